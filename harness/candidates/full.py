"""Full fine-tuning with transformers' Trainer: assistant-only labels, best checkpoint by
validation loss (``load_best_model_at_end``), the chosen model saved with ``save_pretrained``."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from harness.candidates.protocol import TrainingSummary
from harness.data.records import Split

FULL_DEFAULTS: dict[str, Any] = {
    "n_epochs": 3,
    "batch_size": 16,
    "learning_rate": 1e-3,
    "lr_scheduler_type": "linear",
    "warmup_steps": 0,  # an int, or a float in [0, 1) for a share of all steps
    "weight_decay": 0.0,
    "gradient_accumulation_steps": 1,
    "gradient_checkpointing": False,
    "max_length": 256,
    "precision": "auto",
    "eval_steps": None,
    "save_total_limit": 2,
    "logging_steps": 5,
    "early_stopping_patience": None,
}


def full_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Defaults overlaid with ``params``; unknown keys are refused."""
    from harness.errors import SpecError

    merged = dict(FULL_DEFAULTS)
    for key, value in (params or {}).items():
        if key not in FULL_DEFAULTS:
            raise SpecError(f"unknown full fine-tuning parameter {key!r}; known: {', '.join(sorted(FULL_DEFAULTS))}")
        merged[key] = value
    return merged


def tokenize_with_assistant_labels(split: Split, tokenizer, max_length: int):
    """Token ids with labels only on assistant tokens (the chat template's generation blocks)."""
    from datasets import Dataset

    rows = []
    for ex in split.examples:
        enc = tokenizer.apply_chat_template(ex.messages, tokenize=True, return_dict=True,
                                            return_assistant_tokens_mask=True)
        ids = list(enc["input_ids"])[:max_length]
        mask = list(enc["assistant_masks"])[:max_length]
        labels = [t if m else -100 for t, m in zip(ids, mask, strict=True)]
        if all(lbl == -100 for lbl in labels):
            continue  # counted by count_truncation and reported
        rows.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels})
    return Dataset.from_list(rows)


def train_full(base_dir: Path, train: Split, validation: Split | None, params: Mapping[str, Any] | None,
               out_dir: Path, *, seed: int = 0,
               on_log: Callable[[dict[str, Any]], None] | None = None) -> TrainingSummary:
    """Fine-tune every weight of the base on ``train``; keep the checkpoint with the best validation loss."""
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        DataCollatorForSeq2Seq,
        EarlyStoppingCallback,
        Trainer,
        TrainerCallback,
        TrainingArguments,
        set_seed,
    )

    from harness.candidates.hardware import mixed_precision_flags
    from harness.candidates.lora import count_parameters
    from harness.data.truncation import count_truncation

    p = full_params(params)
    set_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    model = AutoModelForCausalLM.from_pretrained(str(base_dir))
    truncation = count_truncation(train.examples, tokenizer, int(p["max_length"]))
    train_ds = tokenize_with_assistant_labels(train, tokenizer, int(p["max_length"]))
    eval_ds = tokenize_with_assistant_labels(validation, tokenizer, int(p["max_length"])) if validation else None

    strategy = "no" if eval_ds is None else ("steps" if p["eval_steps"] else "epoch")
    args = TrainingArguments(
        output_dir=str(out_dir / "_checkpoints"),
        num_train_epochs=float(p["n_epochs"]),
        per_device_train_batch_size=int(p["batch_size"]),
        per_device_eval_batch_size=int(p["batch_size"]),
        gradient_accumulation_steps=int(p["gradient_accumulation_steps"]),
        gradient_checkpointing=bool(p["gradient_checkpointing"]),
        learning_rate=float(p["learning_rate"]),
        lr_scheduler_type=str(p["lr_scheduler_type"]),
        warmup_steps=p["warmup_steps"],
        weight_decay=float(p["weight_decay"]),
        logging_steps=int(p["logging_steps"]),
        eval_strategy=strategy,
        save_strategy=strategy,
        eval_steps=p["eval_steps"],
        save_steps=p["eval_steps"],
        save_total_limit=p["save_total_limit"],
        load_best_model_at_end=eval_ds is not None,
        metric_for_best_model="eval_loss",
        greater_is_better=False,
        report_to="none",
        seed=seed,
        data_seed=seed,
        disable_tqdm=True,
        dataloader_num_workers=0,
        **mixed_precision_flags(p["precision"]),
    )
    history: list[dict[str, Any]] = []

    class _Record(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs:
                entry = {"step": state.global_step, "epoch": state.epoch, **logs}
                history.append(entry)
                if on_log:
                    on_log(entry)

    callbacks = [_Record()]
    if p["early_stopping_patience"] and eval_ds is not None:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=int(p["early_stopping_patience"])))
    trainer = Trainer(
        model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
        data_collator=DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100, padding=True),
        callbacks=callbacks,
    )
    trainable, total = count_parameters(model)
    began = time.perf_counter()
    output = trainer.train()
    runtime = time.perf_counter() - began
    eval_loss = float(trainer.evaluate()["eval_loss"]) if eval_ds is not None else None
    notes = []
    if trainer.state.best_model_checkpoint:
        notes.append(f"best checkpoint by validation loss: {Path(trainer.state.best_model_checkpoint).name}")
    trainer.model.save_pretrained(str(out_dir))
    tokenizer.padding_side = "left"
    tokenizer.save_pretrained(str(out_dir))
    import shutil

    shutil.rmtree(out_dir / "_checkpoints", ignore_errors=True)
    return TrainingSummary(
        hyperparameters={**p, "seed": seed},
        runtime_s=runtime,
        trainable_params=trainable,
        total_params=total,
        train_loss=float(output.training_loss),
        eval_loss=eval_loss,
        log_history=history,
        rows_dropped=max(truncation.dropped, len(train) - len(train_ds)),
        rows_truncated=truncation.truncated,
        notes=notes,
    )

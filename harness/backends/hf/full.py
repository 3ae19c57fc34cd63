"""Full fine-tuning with transformers' Trainer: assistant-only labels, best checkpoint by
validation loss (``load_best_model_at_end``), early stopping, the chosen model saved with
``save_pretrained``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from harness.data.records import Split
from harness.protocol import TrainingSummary
from harness.training.lifecycle import SCHEDULE_DEFAULTS

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
    "logging_steps": 5,
    **SCHEDULE_DEFAULTS,
    "load_best_model_at_end": True,  # keep the checkpoint with the lowest validation loss
}


def full_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Defaults overlaid with ``params``; unknown keys and impossible values are refused."""
    from harness.errors import SpecError
    from harness.training.lifecycle import check_common_params

    merged = dict(FULL_DEFAULTS)
    for key, value in (params or {}).items():
        if key not in FULL_DEFAULTS:
            raise SpecError(f"unknown full fine-tuning parameter {key!r}; known: {', '.join(sorted(FULL_DEFAULTS))}")
        merged[key] = value
    check_common_params(merged)
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


def prepare_full_trainer(base_dir: Path, train: Split, validation: Split | None,
                         params: Mapping[str, Any] | None, output_dir: Path, *, seed: int = 0,
                         checkpointing: bool = False,
                         on_log: Callable[[dict[str, Any]], None] | None = None):
    """The configured ``Trainer`` (data tokenized with assistant-only labels), not yet trained.

    Returns ``(trainer, tokenizer, params, truncation_report)``.
    """
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        DataCollatorForSeq2Seq,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    from harness.data.truncation import count_truncation
    from harness.training.lifecycle import trainer_arguments, training_callbacks

    p = full_params(params)
    has_eval = validation is not None
    args = TrainingArguments(**trainer_arguments(p, output_dir=output_dir, seed=seed, has_eval=has_eval,
                                                 checkpointing=checkpointing))
    set_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    model = AutoModelForCausalLM.from_pretrained(str(base_dir))
    truncation = count_truncation(train.examples, tokenizer, int(p["max_length"]))
    train_ds = tokenize_with_assistant_labels(train, tokenizer, int(p["max_length"]))
    eval_ds = tokenize_with_assistant_labels(validation, tokenizer, int(p["max_length"])) if has_eval else None
    trainer = Trainer(
        model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
        data_collator=DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100, padding=True),
        callbacks=training_callbacks(p, has_eval=has_eval, on_log=on_log),
    )
    return trainer, tokenizer, p, truncation


def train_full(base_dir: Path, train: Split, validation: Split | None, params: Mapping[str, Any] | None,
               out_dir: Path, *, seed: int = 0,
               on_log: Callable[[dict[str, Any]], None] | None = None,
               checkpoint_dir: Path | None = None,
               log: Callable[[str], None] | None = None) -> TrainingSummary:
    """Fine-tune every weight of the base on ``train``; keep the checkpoint with the best validation
    loss and save it into ``out_dir``. With ``checkpoint_dir`` the run checkpoints there and
    resumes from its last checkpoint."""
    from harness.training.lifecycle import fit_and_summarise

    scratch = out_dir / "_checkpoints"
    trainer, tokenizer, p, truncation = prepare_full_trainer(
        base_dir, train, validation, params, checkpoint_dir or scratch, seed=seed,
        checkpointing=checkpoint_dir is not None, on_log=on_log)
    summary = fit_and_summarise(trainer, params=p, seed=seed, train_rows=len(train),
                                has_eval=validation is not None, truncation=truncation,
                                checkpoint_dir=checkpoint_dir, scratch=scratch, log=log)
    if trainer.is_world_process_zero():  # the best checkpoint's weights when it was kept
        trainer.model.save_pretrained(str(out_dir))
        tokenizer.padding_side = "left"
        tokenizer.save_pretrained(str(out_dir))
    return summary

"""Sequence-classification fine-tuning of an encoder with transformers' Trainer.

Two ways, both starting from a saved classifier (base encoder + seeded head, see
``encoder_models.init_classifier``): a PEFT LoRA adapter (``task_type=SEQ_CLS``; the head is
trained too, as PEFT adds it to ``modules_to_save``), or every weight (best checkpoint by
validation loss). The text is each example's last user message; its label id comes from the
reference reply through the suite's label order.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.data.records import Split
from harness.protocol import TrainingSummary

_COMMON_DEFAULTS: dict[str, Any] = {
    "n_epochs": 3,
    "batch_size": 16,
    "lr_scheduler_type": "linear",
    "warmup_steps": 0,  # an int, or a float in [0, 1) for a share of all steps
    "weight_decay": 0.0,
    "gradient_accumulation_steps": 1,
    "max_length": 128,
    "precision": "auto",
    "logging_steps": 5,
}
ENCODER_LORA_DEFAULTS: dict[str, Any] = {
    **_COMMON_DEFAULTS,
    "learning_rate": 1e-3,
    "r": 16,
    "alpha": 32,
    "dropout": 0.0,
    "target_modules": ["query", "key", "value", "dense"],
    "modules_to_save": None,  # the classification head is always added by PEFT for SEQ_CLS
    "bias": "none",
}
ENCODER_FULL_DEFAULTS: dict[str, Any] = {
    **_COMMON_DEFAULTS,
    "learning_rate": 5e-5,
    "eval_steps": None,
    "save_total_limit": 1,
    "early_stopping_patience": None,
}


def encoder_params(kind: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Defaults of ``kind`` ("lora" or "full") overlaid with ``params``; unknown keys are refused."""
    from harness.errors import SpecError

    defaults = ENCODER_LORA_DEFAULTS if kind == "lora" else ENCODER_FULL_DEFAULTS
    merged = dict(defaults)
    for key, value in (params or {}).items():
        if key not in defaults:
            raise SpecError(f"unknown encoder {kind} parameter {key!r}; known: {', '.join(sorted(defaults))}")
        merged[key] = value
    return merged


def classification_dataset(split: Split, labels: Sequence[str], tokenizer: Any, max_length: int,
                           aliases: Mapping[str, str] | None = None) -> tuple[Any, int]:
    """``(datasets.Dataset of input ids + labels, number of texts cut at max_length)``."""
    from datasets import Dataset

    from harness.backends.encoder.inference import last_user_text
    from harness.backends.encoder.models import label_ids

    texts = [last_user_text(ex.prompt) for ex in split.examples]
    ids = label_ids(split, labels, aliases)
    full = tokenizer(texts)["input_ids"]
    truncated = sum(1 for tokens in full if len(tokens) > max_length)
    encoded = tokenizer(texts, truncation=True, max_length=max_length)
    columns = {name: list(values) for name, values in encoded.items()}
    return Dataset.from_dict({**columns, "labels": ids}), truncated


def _accuracy(eval_prediction) -> dict[str, float]:
    from sklearn.metrics import accuracy_score

    logits, references = eval_prediction.predictions, eval_prediction.label_ids
    return {"accuracy": float(accuracy_score(references, logits.argmax(axis=-1)))}


def _training_args(p: Mapping[str, Any], out: Path, seed: int, *, evaluating: bool, keep_best: bool):
    from transformers import TrainingArguments

    from harness.training.hardware import mixed_precision_flags

    strategy = "no" if not evaluating else ("steps" if p.get("eval_steps") else "epoch")
    if keep_best and evaluating:  # checkpoints hold weights only: the best one is reloaded, never resumed
        extra: dict[str, Any] = {"save_strategy": strategy, "save_steps": p.get("eval_steps"),
                 "save_total_limit": p["save_total_limit"], "save_only_model": True,
                 "load_best_model_at_end": True,
                 "metric_for_best_model": "eval_loss", "greater_is_better": False}
    else:
        extra = {"save_strategy": "no"}
    return TrainingArguments(
        output_dir=str(out),
        num_train_epochs=float(p["n_epochs"]),
        per_device_train_batch_size=int(p["batch_size"]),
        per_device_eval_batch_size=int(p["batch_size"]),
        gradient_accumulation_steps=int(p["gradient_accumulation_steps"]),
        learning_rate=float(p["learning_rate"]),
        lr_scheduler_type=str(p["lr_scheduler_type"]),
        warmup_steps=p["warmup_steps"],
        weight_decay=float(p["weight_decay"]),
        logging_steps=int(p["logging_steps"]),
        eval_strategy=strategy,
        eval_steps=p.get("eval_steps"),
        report_to="none",
        seed=seed,
        data_seed=seed,
        disable_tqdm=True,
        dataloader_num_workers=0,
        **extra,
        **mixed_precision_flags(p["precision"]),
    )


def fit_encoder(kind: str, init_dir: Path, train: Split, validation: Split | None, labels: Sequence[str],
                params: Mapping[str, Any] | None, work_dir: Path, *, seed: int = 0,
                aliases: Mapping[str, str] | None = None,
                on_log: Callable[[dict[str, Any]], None] | None = None) -> tuple[Any, Any, TrainingSummary]:
    """Train ``kind`` ("lora" or "full") from the saved classifier ``init_dir``.

    Returns ``(model, tokenizer, summary)``; nothing is saved (``work_dir`` holds checkpoints).
    """
    from transformers import (
        AutoModelForSequenceClassification,
        DataCollatorWithPadding,
        EarlyStoppingCallback,
        Trainer,
        TrainerCallback,
        set_seed,
    )

    from harness.backends.encoder.models import load_tokenizer
    from harness.training.lifecycle import count_parameters

    p = encoder_params(kind, params)
    set_seed(seed)
    tokenizer = load_tokenizer(init_dir)
    model = AutoModelForSequenceClassification.from_pretrained(str(init_dir))
    max_length = int(p["max_length"])
    train_ds, truncated = classification_dataset(train, labels, tokenizer, max_length, aliases)
    eval_ds = classification_dataset(validation, labels, tokenizer, max_length, aliases)[0] if validation else None
    if kind == "lora":
        from peft import LoraConfig, TaskType, get_peft_model

        targets = p["target_modules"]
        model = get_peft_model(model, LoraConfig(
            task_type=TaskType.SEQ_CLS, r=int(p["r"]), lora_alpha=int(p["alpha"]),
            lora_dropout=float(p["dropout"]), bias=str(p["bias"]),
            target_modules=list(targets) if isinstance(targets, (list, tuple)) else targets,
            modules_to_save=list(p["modules_to_save"]) if p["modules_to_save"] else None,
        ))

    history: list[dict[str, Any]] = []

    class _Record(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs:
                entry = {"step": state.global_step, "epoch": state.epoch, **logs}
                history.append(entry)
                if on_log:
                    on_log(entry)

    callbacks: list[Any] = [_Record()]
    keep_best = kind == "full"
    if keep_best and p["early_stopping_patience"] and eval_ds is not None:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=int(p["early_stopping_patience"])))
    trainer = Trainer(
        model=model,
        args=_training_args(p, work_dir / "_checkpoints", seed, evaluating=eval_ds is not None,
                            keep_best=keep_best),
        train_dataset=train_ds, eval_dataset=eval_ds,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=_accuracy,
        callbacks=callbacks,
    )
    trainable, total = count_parameters(trainer.model)
    began = time.perf_counter()
    output = trainer.train()
    runtime = time.perf_counter() - began
    notes = []
    eval_loss = None
    if eval_ds is not None:
        final = trainer.evaluate()
        eval_loss = float(final["eval_loss"])
        notes.append(f"validation accuracy: {final['eval_accuracy']:.4f}")
    if trainer.state.best_model_checkpoint:
        notes.append(f"best checkpoint by validation loss: {Path(trainer.state.best_model_checkpoint).name}")
    shutil.rmtree(work_dir / "_checkpoints", ignore_errors=True)
    trainer.model.eval()
    return trainer.model, tokenizer, TrainingSummary(
        hyperparameters={**p, "seed": seed, "labels": list(labels)},
        runtime_s=runtime,
        trainable_params=trainable,
        total_params=total,
        train_loss=float(output.training_loss),
        eval_loss=eval_loss,
        log_history=history,
        rows_dropped=0,
        rows_truncated=truncated,
        notes=notes,
    )


def train_encoder(kind: str, init_dir: Path, train: Split, validation: Split | None, labels: Sequence[str],
                  params: Mapping[str, Any] | None, out_dir: Path, *, seed: int = 0,
                  aliases: Mapping[str, str] | None = None) -> TrainingSummary:
    """Train and save into ``out_dir``: the LoRA adapter (``kind="lora"``) or the whole classifier."""
    model, tokenizer, summary = fit_encoder(kind, init_dir, train, validation, labels, params, out_dir,
                                            seed=seed, aliases=aliases)
    model.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    return summary

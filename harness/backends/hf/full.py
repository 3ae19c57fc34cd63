"""Full fine-tuning with transformers' Trainer: assistant-only labels, best checkpoint by
validation loss (``load_best_model_at_end``), early stopping, the chosen model saved with
``save_pretrained``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from harness.data.records import Split
from harness.data.truncation import assistant_mask, count_truncation, has_generation_markers
from harness.protocol import TrainingSummary
from harness.training.arguments import trainer_arguments, training_callbacks
from harness.training.params import SCHEDULE_DEFAULTS
from harness.training.recipe import Prepared, Recipe, TrainingJob

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


ASSISTANT_ONLY = "assistant-only (template markers)"
COMPLETION_ONLY = "completion-only (harness mask)"


def full_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Defaults overlaid with ``params``; unknown keys and impossible values are refused."""
    return FULL.params(params)


def tokenize_with_assistant_labels(split: Split, tokenizer, max_length: int):
    """Token ids with labels only on assistant tokens: the chat template's generation blocks, or
    (a template without them) the tokens each assistant turn adds to the rendering."""
    from datasets import Dataset


    rows = []
    for ex in split.examples:
        enc = tokenizer.apply_chat_template(ex.messages, tokenize=True, return_dict=True)
        ids = list(enc["input_ids"])[:max_length]
        mask = assistant_mask(tokenizer, list(ex.messages))[:max_length]
        labels = [t if m else -100 for t, m in zip(ids, mask, strict=True)]
        if all(lbl == -100 for lbl in labels):
            continue  # counted by count_truncation and reported
        rows.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels})
    return Dataset.from_list(rows)


def _prepare(job: TrainingJob, output_dir: Path, checkpointing: bool) -> Prepared:
    """The configured ``Trainer`` (data tokenized with assistant-only labels), not yet trained."""
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        DataCollatorForSeq2Seq,
        Trainer,
        TrainingArguments,
        set_seed,
    )


    p, has_eval = job.params, job.validation is not None
    args = TrainingArguments(**trainer_arguments(p, output_dir=output_dir, seed=job.seed, has_eval=has_eval,
                                                 checkpointing=checkpointing))
    set_seed(job.seed)
    tokenizer = AutoTokenizer.from_pretrained(str(job.model_dir))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    model = AutoModelForCausalLM.from_pretrained(str(job.model_dir))
    max_length = int(p["max_length"])
    truncation = count_truncation(job.train.examples, tokenizer, max_length)
    train_ds = tokenize_with_assistant_labels(job.train, tokenizer, max_length)
    eval_ds = (tokenize_with_assistant_labels(job.validation, tokenizer, max_length)
               if job.validation is not None else None)
    trainer = Trainer(
        model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
        data_collator=DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100, padding=True),
        callbacks=training_callbacks(p, has_eval=has_eval, on_log=job.on_log),
    )
    return Prepared(trainer, tokenizer, rows_dropped=truncation.dropped, rows_truncated=truncation.truncated,
                    hyperparameters={"loss_mask": loss_mask_name(tokenizer)})


def loss_mask_name(tokenizer) -> str:
    """How the loss is masked for ``tokenizer``'s chat template (shown in the training table)."""

    return ASSISTANT_ONLY if has_generation_markers(tokenizer) else COMPLETION_ONLY


def _save(prepared: Prepared, out_dir: Path) -> None:
    """The kept model (the best checkpoint's weights when it was kept) and a left-padding tokenizer."""
    if prepared.trainer.is_world_process_zero():
        prepared.trainer.model.save_pretrained(str(out_dir))
        prepared.tokenizer.padding_side = "left"
        prepared.tokenizer.save_pretrained(str(out_dir))


def _remedies(p: Mapping[str, Any]) -> list[str]:
    return ["LoRA instead of full fine-tuning: kind = \"lora\" (optionally with load_in_4bit = true)"]


FULL = Recipe(kind="full", title="full fine-tuning", namespace="model", defaults=FULL_DEFAULTS,
              prepare=_prepare, save=_save, remedies=_remedies)


def prepare_full_trainer(base_dir: Path, train: Split, validation: Split | None,
                         params: Mapping[str, Any] | None, output_dir: Path, *, seed: int = 0,
                         checkpointing: bool = False,
                         on_log: Callable[[dict[str, Any]], None] | None = None):
    """The configured ``Trainer``, not yet trained: ``(trainer, tokenizer, params, prepared)``."""
    job = TrainingJob(Path(base_dir), train, validation, FULL.params(params), seed, on_log=on_log)
    prepared = _prepare(job, Path(output_dir), checkpointing)
    return prepared.trainer, prepared.tokenizer, dict(job.params), prepared


def train_full(base_dir: Path, train: Split, validation: Split | None, params: Mapping[str, Any] | None,
               out_dir: Path, *, seed: int = 0,
               on_log: Callable[[dict[str, Any]], None] | None = None,
               checkpoint_dir: Path | None = None,
               log: Callable[[str], None] | None = None) -> TrainingSummary:
    """Fine-tune every weight of the base on ``train``; keep the checkpoint with the best validation
    loss and save it into ``out_dir``. With ``checkpoint_dir`` the run checkpoints there and
    resumes from its last checkpoint."""
    job = TrainingJob(Path(base_dir), train, validation, FULL.params(params), seed, on_log=on_log)
    return FULL.train(job, Path(out_dir), checkpoint_dir=checkpoint_dir, log=log)

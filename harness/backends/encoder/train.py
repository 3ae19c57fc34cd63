"""Sequence-classification fine-tuning of an encoder with transformers' Trainer.

Two ways, both starting from a saved classifier (base encoder + seeded head, see
``encoder_models.init_classifier``): a PEFT LoRA adapter (``task_type=SEQ_CLS``; the head is
trained too, as PEFT adds it to ``modules_to_save``), or every weight (best checkpoint by
validation loss). The text is each example's last user message; its label id comes from the
reference reply through the suite's label order.

Both are recipes of the one training lifecycle (``harness.training``): the same value checks,
checkpoints and resume, out-of-memory advice and summary as the causal-LM trainers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.backends.encoder.inference import last_user_text
from harness.backends.encoder.models import label_ids, load_tokenizer
from harness.data.records import Split
from harness.protocol import TrainingSummary
from harness.training.arguments import trainer_arguments, training_callbacks
from harness.training.params import SCHEDULE_DEFAULTS, check_adapter_params, number
from harness.training.recipe import Prepared, Recipe, TrainingJob

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
_LORA_KEYED: dict[str, Any] = {
    **_COMMON_DEFAULTS,
    "learning_rate": 1e-3,
    "r": 16,
    "alpha": 32,
    "dropout": 0.0,
    "target_modules": ["query", "key", "value", "dense"],
    "modules_to_save": None,  # the classification head is always added by PEFT for SEQ_CLS
    "bias": "none",
}
_FULL_KEYED: dict[str, Any] = {
    **_COMMON_DEFAULTS,
    "learning_rate": 5e-5,
    "eval_steps": None,
    "save_total_limit": 1,
    "early_stopping_patience": None,
}
# The parameters above are always part of a cache key; the ones added since (the shared schedule,
# gradient checkpointing) count only when set to something else than their default, so every
# artifact trained before keeps its key.
ENCODER_LORA_DEFAULTS: dict[str, Any] = {**SCHEDULE_DEFAULTS, "gradient_checkpointing": False, **_LORA_KEYED}
ENCODER_FULL_DEFAULTS: dict[str, Any] = {
    **SCHEDULE_DEFAULTS, "gradient_checkpointing": False, **_FULL_KEYED,
    "load_best_model_at_end": True,  # keep the checkpoint with the lowest validation loss
}


def encoder_params(kind: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Defaults of ``kind`` ("lora" or "full") overlaid with ``params``; unknown keys and
    impossible values are refused."""
    return encoder_recipe(kind).params(params)


def classification_dataset(split: Split, labels: Sequence[str], tokenizer: Any, max_length: int,
                           aliases: Mapping[str, str] | None = None) -> tuple[Any, int]:
    """``(datasets.Dataset of input ids + labels, number of texts cut at max_length)``."""
    from datasets import Dataset


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


def lora_config(p: Mapping[str, Any]):
    """The PEFT ``LoraConfig`` (task type SEQ_CLS) of the parameters; alpha kept as given."""
    from peft import LoraConfig, TaskType


    targets = p["target_modules"]
    return LoraConfig(
        task_type=TaskType.SEQ_CLS, r=int(p["r"]), lora_alpha=number(p["alpha"]),  # type: ignore[arg-type]
        lora_dropout=float(p["dropout"]), bias=p["bias"],
        target_modules=list(targets) if isinstance(targets, (list, tuple)) else targets,
        modules_to_save=list(p["modules_to_save"]) if p["modules_to_save"] else None,
    )


def _prepare(job: TrainingJob, output_dir: Path, checkpointing: bool, *, adapter: bool) -> Prepared:
    """The configured ``Trainer`` over the saved classifier ``job.model_dir``, not yet trained."""
    from transformers import (
        AutoModelForSequenceClassification,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
        set_seed,
    )


    p, has_eval = job.params, job.validation is not None
    # The head's loss is a mean over examples: scaling it by the process count (transformers' token
    # averaging across devices, meant for token-summed causal-LM losses) would multiply it.
    args = TrainingArguments(**trainer_arguments(p, output_dir=output_dir, seed=job.seed, has_eval=has_eval,
                                                 checkpointing=checkpointing),
                             average_tokens_across_devices=False)
    set_seed(job.seed)
    tokenizer = load_tokenizer(job.model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(str(job.model_dir))
    max_length = int(p["max_length"])
    labels = list(job.labels)
    train_ds, truncated = classification_dataset(job.train, labels, tokenizer, max_length, job.aliases)
    eval_ds = (classification_dataset(job.validation, labels, tokenizer, max_length, job.aliases)[0]
               if job.validation is not None else None)
    if adapter:
        from peft import get_peft_model

        if p["gradient_checkpointing"]:
            model.enable_input_require_grads()  # frozen embeddings: checkpointed blocks still need grads
        model = get_peft_model(model, lora_config(p))
    trainer = Trainer(
        model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=_accuracy,
        callbacks=training_callbacks(p, has_eval=has_eval, on_log=job.on_log),
    )
    return Prepared(trainer, tokenizer, rows_truncated=truncated, hyperparameters={"labels": labels})


def _finish(prepared: Prepared, job: TrainingJob) -> None:
    prepared.trainer.model.eval()


def _save(prepared: Prepared, out_dir: Path) -> None:
    """The adapter (head included) or the whole classifier, and its tokenizer (main process only)."""
    if prepared.trainer.is_world_process_zero():
        prepared.trainer.model.save_pretrained(str(out_dir))
        prepared.tokenizer.save_pretrained(str(out_dir))


def _full_remedies(p: Mapping[str, Any]) -> list[str]:
    return ["LoRA instead of full fine-tuning: kind = \"encoder-lora\""]


ENCODER_LORA = Recipe(
    kind="encoder-lora", title="encoder lora", namespace="encoder-adapter", defaults=ENCODER_LORA_DEFAULTS,
    prepare=lambda job, out, checkpointing: _prepare(job, out, checkpointing, adapter=True),
    save=_save, finish=_finish, check=check_adapter_params, key_fields=frozenset(_LORA_KEYED))
ENCODER_FULL = Recipe(
    kind="encoder-full", title="encoder full", namespace="encoder-model", defaults=ENCODER_FULL_DEFAULTS,
    prepare=lambda job, out, checkpointing: _prepare(job, out, checkpointing, adapter=False),
    save=_save, finish=_finish, remedies=_full_remedies, key_fields=frozenset(_FULL_KEYED))


def encoder_recipe(kind: str) -> Recipe:
    """The recipe of ``kind`` ("lora" or "full")."""
    if kind not in ("lora", "full"):
        raise ValueError(f"unknown encoder training kind {kind!r} (expected 'lora' or 'full')")
    return ENCODER_LORA if kind == "lora" else ENCODER_FULL


def _job(kind: str, init_dir: Path, train: Split, validation: Split | None, labels: Sequence[str],
         params: Mapping[str, Any] | None, seed: int, aliases: Mapping[str, str] | None,
         on_log: Callable[[dict[str, Any]], None] | None) -> TrainingJob:
    return TrainingJob(Path(init_dir), train, validation, encoder_params(kind, params), seed, tuple(labels),
                       dict(aliases or {}), on_log)


def fit_encoder(kind: str, init_dir: Path, train: Split, validation: Split | None, labels: Sequence[str],
                params: Mapping[str, Any] | None, work_dir: Path, *, seed: int = 0,
                aliases: Mapping[str, str] | None = None,
                on_log: Callable[[dict[str, Any]], None] | None = None,
                checkpoint_dir: Path | None = None,
                log: Callable[[str], None] | None = None) -> tuple[Any, Any, TrainingSummary]:
    """Train ``kind`` ("lora" or "full") from the saved classifier ``init_dir``.

    Returns ``(model, tokenizer, summary)``; nothing is saved (checkpoints go to ``checkpoint_dir``,
    resumed from on the next call, or to a scratch folder in ``work_dir`` removed afterwards).
    """
    job = _job(kind, init_dir, train, validation, labels, params, seed, aliases, on_log)
    prepared, summary = encoder_recipe(kind).fit(job, Path(work_dir), checkpoint_dir=checkpoint_dir, log=log)
    return prepared.trainer.model, prepared.tokenizer, summary

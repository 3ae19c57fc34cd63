"""What LoRA and full fine-tuning share: evaluation / checkpoint schedule, early stopping, log
recording, resuming from a checkpoint, failure messages and the training summary.

Both kinds drive a ``transformers.Trainer`` (TRL's ``SFTTrainer`` is one), so the arguments
built here are valid for ``TrainingArguments`` and ``SFTConfig`` alike.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from harness.errors import SpecError, TrainingError
from harness.protocol import TrainingSummary

# Evaluation, checkpoint and early-stopping parameters common to both kinds.
SCHEDULE_DEFAULTS: dict[str, Any] = {
    "eval_steps": None,          # evaluate every N steps (None: every epoch)
    "save_steps": None,          # checkpoint every N steps (None: at each evaluation / epoch)
    "save_total_limit": 2,       # checkpoints kept on disk (the best one is always kept)
    "load_best_model_at_end": False,
    "early_stopping_patience": None,  # evaluations without improvement before stopping
    "early_stopping_threshold": 0.0,  # how much better counts as an improvement
}

# Parameters that change how often work is saved, never the trained model: not part of cache keys.
OPERATIONAL_PARAMS = frozenset({"save_steps", "save_total_limit"})


@dataclass
class TuningSummary(TrainingSummary):
    """A training summary with what the playbook adds: overfitting check, early stopping,
    best checkpoint, resume point and (for a search) the trials table."""

    overfitting: dict[str, Any] | None = None
    early_stopped: bool = False
    best_step: int | None = None
    resumed_from_step: int | None = None
    search: dict[str, Any] | None = None


def summary_from_dict(data: Mapping[str, Any]) -> TuningSummary:
    """Rebuild a summary stored as ``as_dict()`` (older entries without the extra keys work too)."""
    known = {f.name for f in fields(TuningSummary)}
    return TuningSummary(**{k: v for k, v in data.items() if k in known})


def cache_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The effective parameters that determine a trained model (what its cache key hashes)."""
    return {k: v for k, v in params.items() if k not in OPERATIONAL_PARAMS}


def check_positive(p: Mapping[str, Any], key: str, kind: type, *, allow_zero: bool = False) -> None:
    """Refuse ``p[key]`` unless it is a positive (or, with ``allow_zero``, non-negative) number,
    whole when ``kind`` is int."""
    value = p[key]
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok and kind is int:
        ok = float(value).is_integer()
    if not ok or not math.isfinite(float(value)) or float(value) < 0 or (float(value) == 0 and not allow_zero):
        expected = "a positive integer" if kind is int else "a positive number"
        raise SpecError(f"parameter {key!r}: expected {expected}, got {value!r}")


def check_common_params(p: Mapping[str, Any]) -> None:
    """Refuse values that would otherwise fail deep inside transformers (or train nonsense)."""
    for key in ("n_epochs", "learning_rate"):
        check_positive(p, key, float)
    for key in ("batch_size", "gradient_accumulation_steps", "max_length", "logging_steps"):
        check_positive(p, key, int)
    check_positive(p, "weight_decay", float, allow_zero=True)
    check_positive(p, "warmup_steps", float, allow_zero=True)
    for key in ("eval_steps", "save_steps", "early_stopping_patience"):
        if p[key] is not None:
            check_positive(p, key, int)
    if p["save_total_limit"] is not None:
        check_positive(p, "save_total_limit", int)
    check_positive(p, "early_stopping_threshold", float, allow_zero=True)


def schedule_arguments(p: Mapping[str, Any], *, has_eval: bool, checkpointing: bool) -> dict[str, Any]:
    """Evaluation / save / best-model arguments for ``TrainingArguments`` from the parameters.

    Evaluation runs every ``eval_steps`` (or every ``save_steps`` when only that is given, else
    every epoch). Keeping the best model (``load_best_model_at_end``, implied by early stopping)
    saves at every evaluation, as transformers requires; otherwise checkpoints are written only
    when ``checkpointing`` (resumable runs), every ``save_steps`` or every epoch.
    """
    eval_steps, save_steps = p.get("eval_steps"), p.get("save_steps")
    patience = p.get("early_stopping_patience")
    if patience and not has_eval:
        raise SpecError("parameter 'early_stopping_patience' needs a validation split to watch; "
                        "add `validation = ...` to the suite or remove the parameter")
    load_best = has_eval and bool(p.get("load_best_model_at_end") or patience)
    if not has_eval:
        eval_strategy = "no"
    elif eval_steps or save_steps:
        eval_strategy, eval_steps = "steps", int(eval_steps or save_steps)
    else:
        eval_strategy = "epoch"
    if load_best:
        save_strategy = eval_strategy
        if eval_strategy == "steps":
            save_steps = int(save_steps or eval_steps)
            if save_steps % eval_steps:
                raise SpecError(f"parameter 'save_steps' = {save_steps} must be a multiple of 'eval_steps' = "
                                f"{eval_steps} to keep the best checkpoint (load_best_model_at_end / "
                                "early stopping)")
    elif checkpointing:
        save_strategy = "steps" if save_steps else "epoch"
    else:
        save_strategy = "no"
    return {
        "eval_strategy": eval_strategy,
        "eval_steps": eval_steps if eval_strategy == "steps" else None,
        "save_strategy": save_strategy,
        "save_steps": int(save_steps) if save_strategy == "steps" else 500,
        "save_total_limit": p.get("save_total_limit"),
        "load_best_model_at_end": load_best,
        "metric_for_best_model": "eval_loss" if has_eval else None,
        "greater_is_better": False if has_eval else None,
    }


def trainer_arguments(p: Mapping[str, Any], *, output_dir: Path, seed: int, has_eval: bool,
                      checkpointing: bool) -> dict[str, Any]:
    """Keyword arguments shared by ``TrainingArguments`` and ``SFTConfig`` for one run."""
    from harness.training.hardware import mixed_precision_flags

    return {
        "output_dir": str(output_dir),
        "num_train_epochs": float(p["n_epochs"]),
        "per_device_train_batch_size": int(p["batch_size"]),
        "per_device_eval_batch_size": int(p["batch_size"]),
        "gradient_accumulation_steps": int(p["gradient_accumulation_steps"]),
        "gradient_checkpointing": bool(p["gradient_checkpointing"]),
        "learning_rate": float(p["learning_rate"]),
        "lr_scheduler_type": str(p["lr_scheduler_type"]),
        "warmup_steps": p["warmup_steps"],
        "weight_decay": float(p["weight_decay"]),
        "logging_steps": int(p["logging_steps"]),
        **schedule_arguments(p, has_eval=has_eval, checkpointing=checkpointing),
        "report_to": "none",
        "seed": seed,
        "data_seed": seed,
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
        **mixed_precision_flags(p["precision"]),
    }


def training_callbacks(p: Mapping[str, Any], *, has_eval: bool,
                       on_log: Callable[[dict[str, Any]], None] | None = None) -> list[Any]:
    """Callbacks for one run: stream logs to ``on_log``, log whenever a checkpoint is saved (so a
    resumed run knows the loss of every step before it), and early stopping when asked for."""
    from transformers import EarlyStoppingCallback, TrainerCallback

    class _LogAndAlignSaves(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if control.should_save:
                control.should_log = True

        def on_epoch_end(self, args, state, control, **kwargs):
            if control.should_save:
                control.should_log = True

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and on_log:
                on_log({"step": state.global_step, "epoch": state.epoch, **logs})

    callbacks: list[Any] = [_LogAndAlignSaves()]
    if p.get("early_stopping_patience") and has_eval:
        callbacks.append(EarlyStoppingCallback(
            early_stopping_patience=int(p["early_stopping_patience"]),
            early_stopping_threshold=float(p.get("early_stopping_threshold") or 0.0)))
    return callbacks


def run_trainer(trainer: Any, checkpoints: Path | None,
                log: Callable[[str], None] | None = None) -> tuple[Any, int | None]:
    """``trainer.train()``, resumed from the last whole checkpoint in ``checkpoints`` if one is
    there; returns the train output and the step it resumed from (None for a fresh run)."""
    from harness.training.resume import checkpoint_step, last_complete_checkpoint

    checkpoint = last_complete_checkpoint(checkpoints) if checkpoints is not None else None
    if checkpoint is None:
        return trainer.train(), None
    if log:
        log(f"resuming from {checkpoint.name} in {checkpoint.parent}")
    return trainer.train(resume_from_checkpoint=str(checkpoint)), checkpoint_step(checkpoint)


@dataclass
class RunFacts:
    """What a finished run produced, gathered for :func:`summarise_run`."""

    params: dict[str, Any]
    seed: int
    runtime_s: float
    trainable_params: int
    total_params: int
    training_loss: float
    global_step: int
    max_steps: int
    log_history: list[dict[str, Any]]
    train_history_length: int  # entries logged by train(); later ones evaluate the model kept
    eval_loss: float | None
    rows_dropped: int
    rows_truncated: int
    resumed_from_step: int | None
    best_checkpoint: str | None
    early_stopping: bool


def summarise_run(facts: RunFacts) -> TuningSummary:
    """The training summary: losses over the whole run (resumed or not), the overfitting check,
    early stopping and best-checkpoint notes."""
    from harness.training.overfitting import detect_overfitting, whole_run_train_loss
    from harness.training.resume import checkpoint_step

    trained = facts.log_history[:facts.train_history_length]
    train_loss = whole_run_train_loss(trained, facts.training_loss, facts.resumed_from_step,
                                      facts.global_step)
    notes: list[str] = []
    if facts.resumed_from_step:
        notes.append(f"resumed from checkpoint-{facts.resumed_from_step} after an interruption")
    best_step = checkpoint_step(Path(facts.best_checkpoint)) if facts.best_checkpoint else None
    early_stopped = facts.early_stopping and facts.global_step < facts.max_steps
    if early_stopped:
        epoch = next((e.get("epoch") for e in reversed(trained) if "epoch" in e), None)
        notes.append(f"early stopping: validation loss stopped improving; training ended at step "
                     f"{facts.global_step} of {facts.max_steps}" + (f" (epoch {epoch:.3g})" if epoch else ""))
    if best_step is not None:
        notes.append(f"best checkpoint by validation loss: checkpoint-{best_step} (the model kept)")
    finding = detect_overfitting(trained)
    if finding is not None:
        advice = (" The kept model is the best checkpoint." if best_step is not None else
                  " Consider early_stopping_patience, fewer epochs or more data.")
        notes.append(finding.message() + "." + advice)
    history = [*trained, *({**entry, "final_evaluation": True}
                           for entry in facts.log_history[facts.train_history_length:])]
    return TuningSummary(
        hyperparameters={**facts.params, "seed": facts.seed},
        runtime_s=facts.runtime_s,
        trainable_params=facts.trainable_params,
        total_params=facts.total_params,
        train_loss=train_loss,
        eval_loss=facts.eval_loss,
        log_history=history,
        rows_dropped=facts.rows_dropped,
        rows_truncated=facts.rows_truncated,
        notes=notes,
        overfitting=finding.as_dict() if finding else None,
        early_stopped=early_stopped,
        best_step=best_step,
        resumed_from_step=facts.resumed_from_step,
    )


def count_parameters(model: Any) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


def fit_and_summarise(trainer: Any, *, params: Mapping[str, Any], seed: int, train_rows: int,
                      has_eval: bool, truncation: Any, checkpoint_dir: Path | None, scratch: Path,
                      log: Callable[[str], None] | None) -> TuningSummary:
    """Train (resuming from ``checkpoint_dir`` when it holds a checkpoint), evaluate the kept
    model, drop the scratch checkpoints and summarise the run; shared by LoRA and full training."""
    import shutil
    import time

    trainable, total = count_parameters(trainer.model)
    began = time.perf_counter()
    output, resumed = run_trainer(trainer, checkpoint_dir, log)
    runtime = time.perf_counter() - began
    trained_entries = len(trainer.state.log_history)
    eval_loss = float(trainer.evaluate()["eval_loss"]) if has_eval else None
    shutil.rmtree(scratch, ignore_errors=True)
    return summarise_run(RunFacts(
        params=params, seed=seed, runtime_s=runtime, trainable_params=trainable, total_params=total,
        training_loss=float(output.training_loss), global_step=trainer.state.global_step,
        max_steps=trainer.state.max_steps, log_history=list(trainer.state.log_history),
        train_history_length=trained_entries, eval_loss=eval_loss,
        rows_dropped=max(truncation.dropped, train_rows - len(trainer.train_dataset)),
        rows_truncated=truncation.truncated,
        resumed_from_step=resumed, best_checkpoint=trainer.state.best_model_checkpoint
        if trainer.args.load_best_model_at_end else None,
        early_stopping=bool(params["early_stopping_patience"]) and has_eval,
    ))


def is_out_of_memory(exc: BaseException) -> bool:
    """A CUDA (or other accelerator) out-of-memory error."""
    import torch

    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower()


def oom_remedies(kind: str, params: Mapping[str, Any]) -> list[str]:
    """What to change when training ran out of memory, most effective first, for this kind."""
    batch = int(params.get("batch_size") or 1)
    accumulation = int(params.get("gradient_accumulation_steps") or 1)
    remedies = []
    if batch > 1:
        remedies.append(f"a smaller batch with gradient accumulation: batch_size = {max(1, batch // 2)}, "
                        f"gradient_accumulation_steps = {accumulation * 2} (same effective batch)")
    if not params.get("gradient_checkpointing"):
        remedies.append("gradient_checkpointing = true (recomputes activations instead of storing them)")
    if kind == "lora" and not (params.get("load_in_8bit") or params.get("load_in_4bit")):
        remedies.append("8-bit or 4-bit base loading: load_in_8bit = true or load_in_4bit = true (QLoRA)")
    if kind == "full":
        remedies.append("LoRA instead of full fine-tuning: kind = \"lora\" (optionally with load_in_4bit = true)")
    remedies.append(f"a shorter max_length (now {params.get('max_length')})")
    return remedies


def training_failure(exc: BaseException, *, where: str, kind: str, params: Mapping[str, Any],
                     traceback_file: Path | None = None) -> TrainingError:
    """A ``TrainingError`` naming the candidate and the cause (with remedies for out-of-memory)."""
    cause = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ''}"
    if is_out_of_memory(exc):
        remedies = "; ".join(oom_remedies(kind, params))
        message = f"{where}: training ran out of accelerator memory ({cause}). Try: {remedies}"
    else:
        message = f"{where}: training failed ({cause})"
    if traceback_file is not None:
        message += f" [full traceback: {traceback_file}]"
    return TrainingError(message)

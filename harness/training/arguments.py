"""Trainer arguments, built in one place for every trainer (causal-LM SFT, full fine-tuning and
encoder classification): the evaluation / checkpoint schedule, early stopping and log streaming.

The keyword arguments are valid for ``transformers.TrainingArguments`` and TRL's ``SFTConfig``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from harness.training.divergence import check_log_entry
from harness.training.hardware import (
    accelerator_available,
    distributed_flags,
    mixed_precision_flags,
)
from harness.training.params import ParamError


def schedule_arguments(p: Mapping[str, Any], *, has_eval: bool, checkpointing: bool) -> dict[str, Any]:
    """Evaluation / save / best-model arguments for ``TrainingArguments`` from the parameters.

    Evaluation runs every ``eval_steps`` (or every ``save_steps`` when only that is given, else
    every epoch). Keeping the best model (``load_best_model_at_end``, implied by early stopping)
    saves at every evaluation, as transformers requires; otherwise checkpoints are written only
    when ``checkpointing`` (resumable runs), every ``save_steps`` or every epoch.
    """
    eval_steps: int | None = p.get("eval_steps")
    save_steps: int | None = p.get("save_steps")
    patience = p.get("early_stopping_patience")
    if patience and not has_eval:
        raise ParamError("early_stopping_patience", "needs a validation split to watch; add "
                         "`validation = ...` to the suite or remove the parameter")
    load_best = has_eval and bool(p.get("load_best_model_at_end") or patience)
    if not has_eval:
        eval_strategy = "no"
    elif eval_steps or save_steps:
        eval_strategy, eval_steps = "steps", int(eval_steps or save_steps or 0)
    else:
        eval_strategy = "epoch"
    if load_best:
        save_strategy = eval_strategy
        if eval_strategy == "steps":
            save_steps = int(save_steps or eval_steps or 0)
            if save_steps % int(eval_steps or 1):
                raise ParamError("save_steps", f"{save_steps} must be a multiple of 'eval_steps' = "
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
        "save_steps": int(save_steps or 0) if save_strategy == "steps" else 500,
        "save_total_limit": p.get("save_total_limit"),
        "load_best_model_at_end": load_best,
        "metric_for_best_model": "eval_loss" if has_eval else None,
        "greater_is_better": False if has_eval else None,
    }


def checkpointing_argument() -> str:
    """The training-argument name of activation (gradient) checkpointing: ``activation_checkpointing``
    where transformers has it (``gradient_checkpointing`` is its deprecated alias there)."""
    from transformers import TrainingArguments

    fields = TrainingArguments.__dataclass_fields__
    return "activation_checkpointing" if "activation_checkpointing" in fields else "gradient_checkpointing"


def trainer_arguments(p: Mapping[str, Any], *, output_dir: Path, seed: int, has_eval: bool,
                      checkpointing: bool) -> dict[str, Any]:
    """Keyword arguments shared by ``TrainingArguments`` and ``SFTConfig`` for one run."""

    return {
        "output_dir": str(output_dir),
        "num_train_epochs": float(p["n_epochs"]),
        "per_device_train_batch_size": int(p["batch_size"]),
        "per_device_eval_batch_size": int(p["batch_size"]),
        "gradient_accumulation_steps": int(p["gradient_accumulation_steps"]),
        checkpointing_argument(): bool(p["gradient_checkpointing"]),
        "learning_rate": float(p["learning_rate"]),
        "lr_scheduler_type": str(p["lr_scheduler_type"]),
        "warmup_steps": p["warmup_steps"],
        "weight_decay": float(p["weight_decay"]),
        "logging_steps": int(p["logging_steps"]),
        # a NaN / inf step loss is logged as such (not averaged away), so divergence is caught
        "logging_nan_inf_filter": False,
        **schedule_arguments(p, has_eval=has_eval, checkpointing=checkpointing),
        "report_to": "none",
        "seed": seed,
        "data_seed": seed,
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
        "dataloader_pin_memory": accelerator_available(),  # pinned memory needs a device to copy to
        # a scratch run never resumes: its checkpoints need the weights only (the best is reloaded)
        "save_only_model": not checkpointing,
        **mixed_precision_flags(p["precision"]),
        **distributed_flags(),
    }


def training_callbacks(p: Mapping[str, Any], *, has_eval: bool,
                       on_log: Callable[[dict[str, Any]], None] | None = None) -> list[Any]:
    """Callbacks for one run: stop at the first non-finite loss (``TrainingDiverged``), stream logs
    to ``on_log``, log whenever a checkpoint is saved (so a resumed run knows the loss of every step
    before it), and early stopping when asked for."""
    from transformers import EarlyStoppingCallback, TrainerCallback


    class _LogAndAlignSaves(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if control.should_save:
                control.should_log = True

        def on_epoch_end(self, args, state, control, **kwargs):
            if control.should_save:
                control.should_log = True

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs:
                check_log_entry(logs, state.global_step)
            if logs and on_log:
                on_log({"step": state.global_step, "epoch": state.epoch, **logs})

    callbacks: list[Any] = [_LogAndAlignSaves()]
    if p.get("early_stopping_patience") and has_eval:
        callbacks.append(EarlyStoppingCallback(
            early_stopping_patience=int(p["early_stopping_patience"]),
            early_stopping_threshold=float(p.get("early_stopping_threshold") or 0.0)))
    return callbacks

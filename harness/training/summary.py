"""The training summary: what a run did, over the whole run even when it was resumed, with the
overfitting check, early-stopping and best-checkpoint notes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from harness.protocol import TrainingSummary
from harness.training.overfitting import detect_overfitting, whole_run_train_loss
from harness.training.resume import checkpoint_step


@dataclass
class TuningSummary(TrainingSummary):
    """A training summary with what the playbook adds: overfitting check, early stopping,
    best checkpoint, resume point and (for a search) the trials table."""

    overfitting: dict[str, Any] | None = None
    early_stopped: bool = False
    best_step: int | None = None
    resumed_from_step: int | None = None
    search: dict[str, Any] | None = None
    train_rows: int | None = None  # rows in the train split (rows_dropped / rows_truncated are of these)
    defaults: dict[str, Any] | None = None  # the recipe's defaults: the report shows what a spec changed


def summary_from_dict(data: Mapping[str, Any]) -> TuningSummary:
    """Rebuild a summary stored as ``as_dict()`` (older entries without the extra keys work too)."""
    known = {f.name for f in fields(TuningSummary)}
    return TuningSummary(**{k: v for k, v in data.items() if k in known})


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
    extra_hyperparameters: dict[str, Any] | None = None  # recorded beside the parameters (e.g. labels)
    final_metrics: dict[str, Any] | None = None  # the kept model's final evaluation
    train_rows: int | None = None  # rows in the train split


def summarise_run(facts: RunFacts) -> TuningSummary:
    """The training summary: losses over the whole run (resumed or not), the overfitting check,
    early stopping and best-checkpoint notes."""

    trained = facts.log_history[:facts.train_history_length]
    train_loss = whole_run_train_loss(trained, facts.training_loss, facts.resumed_from_step,
                                      facts.global_step)
    notes: list[str] = []
    accuracy = (facts.final_metrics or {}).get("eval_accuracy")
    if accuracy is not None:
        notes.append(f"validation accuracy: {float(accuracy):.4f}")
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
        hyperparameters={**facts.params, "seed": facts.seed, **(facts.extra_hyperparameters or {})},
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
        train_rows=facts.train_rows,
    )


def count_parameters(model: Any) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total

"""Loss-curve analysis over a trainer's log history (pure): the overfitting check (validation
loss rising while training loss falls, and the epoch where it turned) and the whole-run
training loss of a run resumed from a checkpoint."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

DEFAULT_MIN_RISE = 0.01  # relative rise of validation loss above its minimum that counts


@dataclass(frozen=True)
class LossPoint:
    """One logged loss value and when it was logged."""

    step: int
    epoch: float
    loss: float


@dataclass(frozen=True)
class OverfittingFinding:
    """Validation loss rose after ``turned_at_epoch`` while training loss kept falling."""

    turned_at_epoch: float
    turned_at_step: int
    best_eval_loss: float
    final_eval_loss: float
    final_eval_epoch: float
    train_loss_at_turn: float
    final_train_loss: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def message(self) -> str:
        """One line for the training summary's notes and the log."""
        return (f"overfitting: validation loss rose from {self.best_eval_loss:.4g} at epoch "
                f"{_epoch(self.turned_at_epoch)} to {self.final_eval_loss:.4g} at epoch "
                f"{_epoch(self.final_eval_epoch)} while training loss fell from "
                f"{self.train_loss_at_turn:.4g} to {self.final_train_loss:.4g}; validation loss "
                f"turned at epoch {_epoch(self.turned_at_epoch)} (step {self.turned_at_step})")


def _epoch(value: float) -> str:
    return f"{value:.3g}"


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def loss_curves(log_history: Iterable[Mapping[str, Any]]) -> tuple[list[LossPoint], list[LossPoint]]:
    """(training losses, validation losses) from a ``Trainer`` log history, in step order.

    Training entries carry ``loss``, evaluation entries ``eval_loss``; the end-of-run
    ``train_loss`` summary entry is not a point on the curve.
    """
    train: list[LossPoint] = []
    evals: list[LossPoint] = []
    for entry in log_history:
        step = int(entry.get("step", 0) or 0)
        epoch = float(entry.get("epoch", 0.0) or 0.0)
        if _finite(entry.get("loss")):
            train.append(LossPoint(step, epoch, float(entry["loss"])))
        if _finite(entry.get("eval_loss")):
            evals.append(LossPoint(step, epoch, float(entry["eval_loss"])))
    train.sort(key=lambda p: p.step)
    evals.sort(key=lambda p: p.step)
    return train, evals


def detect_overfitting(log_history: Iterable[Mapping[str, Any]], *,
                       min_rise: float = DEFAULT_MIN_RISE) -> OverfittingFinding | None:
    """The overfitting finding, or None when the curves do not show it.

    Validation loss *turned* at its (first) minimum; it counts as overfitting when the last
    validation loss is more than ``min_rise`` (relative) above that minimum and the last
    training loss, logged after the turn, is below the training loss logged at or before it.
    """
    train, evals = loss_curves(log_history)
    if len(evals) < 2 or not train:
        return None
    best = min(range(len(evals)), key=lambda i: (evals[i].loss, i))
    turn, last = evals[best], evals[-1]
    if best == len(evals) - 1 or last.loss - turn.loss <= min_rise * abs(turn.loss):
        return None
    before = [p for p in train if p.step <= turn.step]
    final_train = train[-1]
    if not before or final_train.step <= turn.step:
        return None
    at_turn = before[-1]
    if not final_train.loss < at_turn.loss:
        return None
    return OverfittingFinding(
        turned_at_epoch=turn.epoch,
        turned_at_step=turn.step,
        best_eval_loss=turn.loss,
        final_eval_loss=last.loss,
        final_eval_epoch=last.epoch,
        train_loss_at_turn=at_turn.loss,
        final_train_loss=final_train.loss,
    )


def whole_run_train_loss(log_history: Iterable[Mapping[str, Any]], training_loss: float,
                         resumed_from_step: int | None, final_step: int) -> float:
    """Mean training loss per step over the whole run, as an uninterrupted run reports it.

    ``training_loss`` is the trainer's mean over the steps it ran itself; after a resume those
    are only the steps after ``resumed_from_step``. The steps before come from the logged
    windows (each ``loss`` is the mean since the previous log); runs log at every checkpoint,
    so the windows end exactly at the resume step. A gap, if any, counts at the last window's mean.
    """
    if not resumed_from_step or final_step <= 0:
        return float(training_loss)
    resumed = min(int(resumed_from_step), int(final_step))
    train, _ = loss_curves(log_history)
    total, previous, last = 0.0, 0, None
    for point in train:
        if point.step > resumed or point.step <= previous:
            continue
        total += point.loss * (point.step - previous)
        previous, last = point.step, point.loss
    if last is None:
        return float(training_loss)  # nothing known about the steps before the resume
    total += last * (resumed - previous)
    return (total + float(training_loss) * (final_step - resumed)) / final_step

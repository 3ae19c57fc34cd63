"""A diverged run (a non-finite training or validation loss) stops training as a ``TrainingError``.

A loss of NaN or ±inf means the weights are no longer numbers: whatever the model generates
afterwards measures nothing, so the candidate fails before it is evaluated or cached.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from harness.errors import TrainingError

# which entry of a Trainer log carries which loss
LOSS_KEYS = {"loss": "training loss", "train_loss": "training loss (mean over the run)",
             "eval_loss": "validation loss"}


class TrainingDiverged(TrainingError):
    """Training produced a non-finite loss at ``step``; ``loss`` names which one."""

    def __init__(self, loss: str, step: int, value: float, where: str = "") -> None:
        self.loss, self.step, self.value, self.where = loss, step, value, where
        prefix = f"{where}: " if where else ""
        super().__init__(f"{prefix}training diverged: {loss} is {value} at step {step}; the weights are "
                         "no longer finite (lower the learning rate, add warmup or gradient clipping)")

    def located(self, where: str) -> TrainingDiverged:
        """The same divergence, its message naming the candidate at ``where``."""
        return TrainingDiverged(self.loss, self.step, self.value, where)


def non_finite(value: Any) -> bool:
    """``value`` is a number that is NaN or infinite."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isfinite(value)


def check_log_entry(entry: Mapping[str, Any], step: int) -> None:
    """Raise ``TrainingDiverged`` when a Trainer log entry holds a non-finite loss."""
    for key, name in LOSS_KEYS.items():
        if key in entry and non_finite(entry[key]):
            raise TrainingDiverged(name, step, float(entry[key]))


def check_final_losses(training_loss: float | None, eval_loss: float | None, step: int) -> None:
    """Raise ``TrainingDiverged`` when the run's mean training loss or its final validation loss is
    not finite (a run that logged nothing in between is still caught here)."""
    check_log_entry({"train_loss": training_loss, "eval_loss": eval_loss}, step)

"""Training-data loss limits: a suite's ``max_dropped_fraction`` / ``max_truncated_fraction`` fail
a trained candidate whose trainer would drop (every label masked) or truncate more of the train
rows than allowed, before training starts (and again on a cache hit, so a warm run agrees)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.errors import TrainingError


@dataclass(frozen=True)
class DataLossLimits:
    """The largest fractions of the train rows that may be dropped / truncated (None: no limit)."""

    where: str = ""  # ``<spec file>: suites.<suite>.candidates.<name>``
    max_dropped_fraction: float | None = None
    max_truncated_fraction: float | None = None

    @classmethod
    def of_suite(cls, suite: Any, where: str) -> DataLossLimits:
        """The limits a suite spec declares."""
        return cls(where, getattr(suite, "max_dropped_fraction", None), getattr(suite, "max_truncated_fraction", None))


def check_data_loss(limits: DataLossLimits | None, *, rows: int, dropped: int, truncated: int,
                    max_length: Any = None, cached: bool = False) -> None:
    """Raise a TrainingError naming the candidate, the counts and the key when a limit is exceeded
    (``cached``: the counts are those of a cached model's training run)."""
    if limits is None or rows <= 0:
        return
    suite_at = limits.where.split(".candidates.")[0]
    for key, count, what in (("max_dropped_fraction", dropped, "dropped (every label masked)"),
                             ("max_truncated_fraction", truncated, "truncated")):
        limit = getattr(limits, key)
        if limit is None or count / rows <= limit:
            continue
        at_length = f" at max_length {max_length}" if max_length is not None else ""
        raise TrainingError(
            f"{limits.where}: {count} of {rows} training rows ({count / rows:.1%}) would be {what}{at_length}, "
            f"more than {key} = {limit:g} ({suite_at}.{key}) allows; "
            f"{'the cached model is not used' if cached else 'nothing was trained'}. Raise max_length, "
            "shorten or remove the long rows (`ft-harness data lint` lists them), or raise the limit.")

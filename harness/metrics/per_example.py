"""The result type of per-example pass / fail checks (exact match, JSON validity, regex)."""

from __future__ import annotations

from dataclasses import dataclass

from harness.metrics._common import mean


@dataclass(frozen=True)
class PerExampleResult:
    """A 0/1 score per example, why each failure failed, and how the check was configured."""

    name: str
    scores: list[int]
    details: list[str]
    signature: str

    @property
    def n(self) -> int:
        """Number of examples checked."""
        return len(self.scores)

    @property
    def passed(self) -> int:
        """Number of examples that passed."""
        return sum(self.scores)

    @property
    def rate(self) -> float:
        """Fraction of examples that passed (0–1)."""
        return mean(self.scores)

    @property
    def failures(self) -> list[tuple[int, str]]:
        """(index, reason) for every failing example."""
        return [(i, reason) for i, (score, reason) in enumerate(zip(self.scores, self.details,
                                                                     strict=True)) if not score]

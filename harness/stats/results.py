"""Result types of the paired tests and of the bootstrap."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class PairedTestResult:
    """A paired test of the difference ``b - a``: statistic, p-value and any convention used.

    ``note`` is empty when scipy's result is reported as is; otherwise it says which
    convention replaced an undefined statistic (for example all differences zero → p = 1.0)
    or why the p-value is undefined (NaN).
    """

    method: str
    statistic: float
    p_value: float
    n: int
    alternative: str
    note: str = ""
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def defined(self) -> bool:
        """False when the p-value is undefined (NaN): neither a pass nor a fail."""
        return not math.isnan(self.p_value)


@dataclass(frozen=True)
class BootstrapResult:
    """A percentile bootstrap confidence interval of the mean difference ``b - a``."""

    estimate: float
    low: float
    high: float
    confidence: float
    n: int
    n_resamples: int
    seed: int
    method: str = "percentile"
    note: str = ""

    @property
    def interval(self) -> tuple[float, float]:
        """(low, high)."""
        return (self.low, self.high)

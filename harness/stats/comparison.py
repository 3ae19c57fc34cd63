"""``compare``: the right paired test for the score type, a bootstrap CI and the MDE, in one result.

Direction: every number is about ``b`` relative to ``a`` on the same examples (``a`` is
usually the baseline, ``b`` the candidate): ``difference = mean_b - mean_a``, and
``alternative="less"`` asks "is b worse than a?" (for scores where higher is better).

* binary scores (0/1 correctness) → McNemar's test (exact binomial below 25 discordant
  pairs, continuity-corrected chi-square otherwise);
* continuous scores → paired t-test.

The CI (two-sided, at ``confidence``) is, for binary scores, Tango's (1998) score interval of
the difference of paired proportions (:mod:`harness.stats.paired_binary`: O(n), and it does not
shrink to a point when no example changed); for continuous scores the paired t interval of the mean
difference (``scipy.stats.ttest_rel(b, a).confidence_interval``), the interval of the test it
reports, also O(n): at 100 k examples the 2,000-resample percentile bootstrap took seconds and gave
the same interval within its resampling error. Both get a minimum detectable effect (MDE) for this n: of the paired t-test at the observed SD
of the differences, or of McNemar's test at the observed discordance rate (see
:mod:`harness.stats.power`). Identical score vectors
report "no difference" with p = 1.0; a p-value that cannot be computed (one pair for a
t-test) stays NaN, ``defined`` is False and the verdict says "inconclusive".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from harness.stats._inputs import check_alternative, check_probability, is_binary, paired
from harness.stats.paired_binary import discordant_counts, tango_bounds
from harness.stats.paired_tests import MCNEMAR_EXACT_BELOW, mcnemar, paired_ttest
from harness.stats.power import mcnemar_mde
from harness.stats.power import mde as t_test_mde

KINDS = ("auto", "binary", "continuous")


@dataclass(frozen=True)
class Comparison:
    """Paired comparison of ``b`` against ``a``; ``difference`` is ``mean_b - mean_a``."""

    kind: str
    method: str
    n: int
    mean_a: float
    mean_b: float
    difference: float
    relative_improvement: float | None
    ci: tuple[float, float]
    confidence: float
    statistic: float
    p_value: float
    mde: float
    alpha: float
    power: float
    alternative: str
    verdict: str
    note: str = ""
    #: degenerate-model warnings of either side, added by the caller that knows the candidates
    #: (e.g. "lora: constant predictor: 'positive' for 100% of examples"); empty from ``compare``
    flags: tuple[str, ...] = ()

    @property
    def defined(self) -> bool:
        """False when the p-value could not be computed: the result is inconclusive."""
        return not math.isnan(self.p_value)

    @property
    def significant(self) -> bool:
        """True when the p-value is defined and below ``alpha`` (in the tested direction)."""
        return self.defined and self.p_value < self.alpha

    def as_dict(self) -> dict[str, Any]:
        """All fields plus ``significant`` and ``defined``, JSON-friendly."""
        data = asdict(self)
        data["ci"] = list(self.ci)
        data["flags"] = list(self.flags)
        data["significant"] = self.significant
        data["defined"] = self.defined
        return data


def _direction_words(alternative: str) -> tuple[str, str]:
    """(what a significant result means, what a non-significant one means)."""
    if alternative == "less":
        return "b is significantly worse than a", "no evidence that b is worse than a"
    if alternative == "greater":
        return "b is significantly better than a", "no evidence that b is better than a"
    return "", "no significant difference between a and b"


def _verdict(result: Comparison) -> str:
    sided = "two-sided" if result.alternative == "two-sided" else "one-sided"
    if result.note.startswith("identical"):
        return (f"no difference: a and b have identical scores on all {result.n} examples "
                f"(mean {result.mean_a:.4g}; p = 1.0 by convention)")
    if not result.defined:
        return f"inconclusive: {result.note} (n = {result.n})"
    ci = ""
    if not math.isnan(result.ci[0]):
        ci = (f", {result.confidence:.0%} CI {result.ci[0]:+.4g} to {result.ci[1]:+.4g}")
    numbers = (f"mean {result.mean_b:.4g} (b) vs {result.mean_a:.4g} (a), difference "
               f"{result.difference:+.4g}{ci}; {result.method}, {sided} p = {result.p_value:.3g}, "
               f"n = {result.n}")
    significant_words, null_words = _direction_words(result.alternative)
    if result.significant:
        if not significant_words:
            better = result.difference > 0
            significant_words = f"b is significantly {'better' if better else 'worse'} than a"
        return f"{significant_words} (alpha {result.alpha:g}): {numbers}"
    detectable = ""
    if math.isinf(result.mde):
        detectable = (f"; this eval set is too small to detect any difference with "
                      f"{result.power:.0%} power")
    elif not math.isnan(result.mde):
        detectable = (f"; this eval set detects a difference of {result.mde:.4g} or more "
                      f"with {result.power:.0%} power")
    return f"{null_words} (alpha {result.alpha:g}): {numbers}{detectable}"


def paired_t_interval(a: np.ndarray, b: np.ndarray, confidence: float) -> tuple[float, float]:
    """The two-sided paired t interval of the mean of ``b - a``; a point when every difference is equal."""
    from scipy import stats

    differences = b - a
    if np.all(differences == differences[0]):
        return (float(differences[0]), float(differences[0]))
    interval = stats.ttest_rel(b, a).confidence_interval(confidence_level=confidence)
    return (float(interval.low), float(interval.high))


def compare(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, *,
            kind: str = "auto", alternative: str = "two-sided", alpha: float = 0.05,
            power: float = 0.8, confidence: float = 0.95, n_resamples: int = 2000,
            seed: int = 0, mcnemar_exact_below: int = MCNEMAR_EXACT_BELOW) -> Comparison:
    """Compare per-example scores of ``b`` against ``a`` with the test that fits their type.

    ``kind="auto"`` treats two vectors of only 0/1 values as binary correctness (McNemar),
    anything else as continuous (paired t-test). ``n_resamples=0`` skips the continuous scores'
    CI (reported as NaN); ``n_resamples`` and ``seed`` are otherwise unused (kept for callers).
    """
    first, second = paired(a, b)
    check_alternative(alternative)
    check_probability(alpha, "alpha")
    check_probability(power, "power")
    check_probability(confidence, "confidence")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
    if n_resamples < 0:
        raise ValueError(f"n_resamples must be >= 0 (0 skips the CI), got {n_resamples}")
    binary = is_binary(first) and is_binary(second)
    if kind == "binary" and not binary:
        for name, values in (("a", first), ("b", second)):
            bad = np.flatnonzero((values != 0) & (values != 1))
            if bad.size:
                raise ValueError(f"kind='binary' needs 0/1 scores, but {name}[{bad[0]}] is "
                                 f"{float(values[bad[0]])!r}")
    resolved = "binary" if (kind == "binary" or (kind == "auto" and binary)) else "continuous"

    n = int(first.shape[0])
    if resolved == "binary":
        test = mcnemar(first, second, alternative=alternative, exact_below=mcnemar_exact_below)
    else:
        test = paired_ttest(first, second, alternative=alternative)
    differences = second - first
    if resolved == "binary":
        detectable = mcnemar_mde(n, float(np.mean(differences != 0)), alpha=alpha, power=power,
                                 alternative=alternative, exact_below=mcnemar_exact_below)
    else:
        sd = float(np.std(differences, ddof=1)) if n > 1 else math.nan
        detectable = (math.nan if n < 2 or sd == 0 else
                      t_test_mde(n, sd, alpha=alpha, power=power, alternative=alternative))
    interval = (math.nan, math.nan)
    if resolved == "binary":
        fixes, breaks = discordant_counts(first, second)
        low, high = tango_bounds(fixes, breaks, n, (1.0 - confidence) / 2.0)
        interval = (float(low), float(high))
    elif n_resamples > 0 and n > 1:
        interval = paired_t_interval(first, second, confidence)
    mean_a, mean_b = float(np.mean(first)), float(np.mean(second))
    difference = float(np.mean(differences))
    note = test.note
    if bool(np.all(differences == 0)):
        note = "identical score vectors: " + (test.note or "no difference")
    result = Comparison(
        kind=resolved, method=test.method, n=n, mean_a=mean_a, mean_b=mean_b,
        difference=difference,
        relative_improvement=difference / abs(mean_a) if mean_a != 0 else None,
        ci=interval, confidence=confidence, statistic=test.statistic, p_value=test.p_value,
        mde=detectable, alpha=alpha, power=power, alternative=alternative, verdict="",
        note=note)
    return replace(result, verdict=_verdict(result))

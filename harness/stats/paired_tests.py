"""Paired significance tests of ``b`` against ``a`` on the same examples, computed by scipy.

Direction, for every function here: the difference is ``d = b - a`` per example;
``alternative="greater"`` tests whether ``b`` tends to score higher than ``a``,
``"less"`` whether it tends to score lower, ``"two-sided"`` either.

Where scipy's statistic is undefined a documented convention applies and the result's
``note`` says so:

* every difference is zero (identical vectors): no difference, ``p_value = 1.0``;
* fewer pairs than a test needs: ``p_value = NaN`` (``defined`` is False) — neither a pass
  nor a fail; callers must treat it as inconclusive.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from harness.stats._inputs import check_alternative, check_binary, paired
from harness.stats.results import PairedTestResult

ALL_ZERO_NOTE = "all paired differences are zero: no difference (p = 1.0 by convention)"
MCNEMAR_EXACT_BELOW = 25


def _all_zero(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.all(a == b))


def paired_ttest(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, *,
                 alternative: str = "two-sided") -> PairedTestResult:
    """Paired t-test of the mean of ``b - a``: ``scipy.stats.ttest_rel(b, a)``.

    Identical vectors give p = 1.0 (scipy: NaN); one pair gives NaN (undefined). When all
    differences are the same non-zero value the statistic is infinite and scipy's p-value
    (0 or 1) is kept, with a note.
    """
    from scipy import stats

    first, second = paired(a, b)
    check_alternative(alternative)
    n = first.shape[0]
    if _all_zero(first, second):
        return PairedTestResult("paired t-test", 0.0, 1.0, n, alternative, ALL_ZERO_NOTE)
    if n < 2:
        return PairedTestResult("paired t-test", math.nan, math.nan, n, alternative,
                                "a paired t-test needs at least 2 pairs: p-value undefined")
    result = stats.ttest_rel(second, first, alternative=alternative)
    differences = second - first
    note = ""
    if np.all(differences == differences[0]):
        note = (f"every paired difference equals {differences[0]:g}: zero variance, infinite "
                "t statistic")
    return PairedTestResult("paired t-test", float(result.statistic), float(result.pvalue), n,
                            alternative, note)


def wilcoxon(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, *,
             alternative: str = "two-sided", zero_method: str = "wilcox",
             correction: bool = False, method: str = "auto") -> PairedTestResult:
    """Wilcoxon signed-rank test of ``b - a``: ``scipy.stats.wilcoxon(b, a, ...)``.

    Identical vectors give p = 1.0 (with ``zero_method="wilcox"`` every pair is dropped).
    """
    from scipy import stats

    first, second = paired(a, b)
    check_alternative(alternative)
    n = first.shape[0]
    if _all_zero(first, second):
        return PairedTestResult("wilcoxon signed-rank", 0.0, 1.0, n, alternative,
                                ALL_ZERO_NOTE)
    result = stats.wilcoxon(second, first, zero_method=zero_method, correction=correction,
                            alternative=alternative, method=method)
    p_value = float(result.pvalue)
    note = "" if not math.isnan(p_value) else "scipy's Wilcoxon p-value is undefined here"
    return PairedTestResult("wilcoxon signed-rank", float(result.statistic), p_value, n,
                            alternative, note)


def mcnemar(a_correct: Sequence[int] | np.ndarray, b_correct: Sequence[int] | np.ndarray, *,
            alternative: str = "two-sided",
            exact_below: int = MCNEMAR_EXACT_BELOW) -> PairedTestResult:
    """McNemar's test of paired correctness: does ``b`` fix more examples than it breaks?

    Only discordant pairs count: ``b_fixes`` (a wrong, b right) and ``b_breaks`` (a right,
    b wrong), D = their sum. With D < ``exact_below`` (default 25) the p-value is the exact
    binomial ``scipy.stats.binomtest(b_fixes, D, 0.5, alternative)`` (statistic: b_fixes).
    Otherwise the continuity-corrected chi-square: statistic
    ``max(|b_fixes - b_breaks| - 1, 0)**2 / D``, p = ``scipy.stats.chi2.sf(statistic, 1)``;
    one-sided, its signed square root ``z = (b_fixes - b_breaks -/+ 1) / sqrt(D)`` with
    ``scipy.stats.norm`` tails (statistic: z). No discordant pairs give p = 1.0.
    """
    from scipy import stats

    first, second = paired(a_correct, b_correct, names=("a_correct", "b_correct"))
    check_alternative(alternative)
    a01 = check_binary(first, "a_correct")
    b01 = check_binary(second, "b_correct")
    n = a01.shape[0]
    fixes = int(np.sum((a01 == 0) & (b01 == 1)))
    breaks = int(np.sum((a01 == 1) & (b01 == 0)))
    discordant = fixes + breaks
    counts = {"b_fixes": fixes, "b_breaks": breaks, "discordant": discordant}
    if discordant == 0:
        return PairedTestResult("McNemar", 0.0, 1.0, n, alternative,
                                "no discordant pairs: a and b are right on the same examples "
                                "(p = 1.0 by convention)", counts)
    if discordant < exact_below:
        p_value = stats.binomtest(fixes, discordant, 0.5, alternative=alternative).pvalue
        return PairedTestResult("McNemar exact (binomial)", float(fixes), float(p_value), n,
                                alternative, "", counts)
    method = "McNemar chi-square (continuity corrected)"
    if alternative == "two-sided":
        statistic = max(abs(fixes - breaks) - 1, 0) ** 2 / discordant
        p_value = stats.chi2.sf(statistic, 1)
    elif alternative == "greater":
        statistic = (fixes - breaks - 1) / math.sqrt(discordant)
        p_value = stats.norm.sf(statistic)
    else:
        statistic = (fixes - breaks + 1) / math.sqrt(discordant)
        p_value = stats.norm.cdf(statistic)
    return PairedTestResult(method, float(statistic), float(p_value), n, alternative, "", counts)


def _mean_difference(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x - y, axis=axis)


def permutation_test(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray,
                     n_resamples: int = 10_000, seed: int = 0, *,
                     alternative: str = "two-sided") -> PairedTestResult:
    """Paired approximate randomisation of the mean of ``b - a`` (random sign flips per pair).

    ``scipy.stats.permutation_test((b, a), mean difference, permutation_type="samples")``:
    exact over all 2**n assignments when that is at most ``n_resamples``, otherwise
    ``n_resamples`` random ones drawn from ``numpy.random.default_rng(seed)``.
    """
    from scipy import stats

    first, second = paired(a, b)
    check_alternative(alternative)
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
    n = first.shape[0]
    if _all_zero(first, second):
        return PairedTestResult("paired permutation", 0.0, 1.0, n, alternative, ALL_ZERO_NOTE)
    if n < 2:
        return PairedTestResult("paired permutation", float(second[0] - first[0]), math.nan, n,
                                alternative, "a permutation test needs at least 2 pairs: "
                                "p-value undefined")
    batch = max(1, 4_000_000 // n)
    result = stats.permutation_test((second, first), _mean_difference,
                                    permutation_type="samples", vectorized=True,
                                    n_resamples=n_resamples, batch=batch,
                                    alternative=alternative, rng=np.random.default_rng(seed))
    return PairedTestResult("paired permutation", float(result.statistic), float(result.pvalue),
                            n, alternative)

"""Paired bootstrap confidence intervals, seeded and vectorised (scipy.stats.bootstrap)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from harness.stats._inputs import check_probability, paired
from harness.stats.results import BootstrapResult

# Resamples are drawn in batches of about this many indices, bounding memory on large sets.
_BATCH_ELEMENTS = 4_000_000
# At most this many distinct differences: resample their counts (multinomial), not the examples.
_FEW_VALUES = 16


def paired_bootstrap(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray,
                     n_resamples: int = 10_000, seed: int = 0, *,
                     confidence: float = 0.95) -> BootstrapResult:
    """Percentile bootstrap CI of the mean difference ``b - a`` (examples resampled in pairs).

    Equals ``scipy.stats.bootstrap((b - a,), np.mean, method="percentile",
    rng=np.random.default_rng(seed))`` when the differences take many distinct values. When they take
    few (0/1 scores: at most 3), a resample is fully described by how often it draws each distinct
    value, Multinomial(n, their shares): drawing those counts gives the same bootstrap distribution
    in O(n + resamples x values) instead of O(n x resamples) (different draws from the same seed, so
    equal to scipy's within resampling error). One pair gives an undefined (NaN) interval.
    """
    from scipy import stats

    first, second = paired(a, b)
    check_probability(confidence, "confidence")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
    differences = second - first
    n = differences.shape[0]
    estimate = float(np.mean(differences))
    if n < 2:
        return BootstrapResult(estimate, math.nan, math.nan, confidence, n, n_resamples, seed,
                               note="a bootstrap interval needs at least 2 pairs")
    values, counts = np.unique(differences, return_counts=True)
    if values.shape[0] <= _FEW_VALUES:
        draws = np.random.default_rng(seed).multinomial(n, counts / n, size=n_resamples)
        means = draws @ values / n
        tail = (1.0 - confidence) / 2.0
        low, high = np.percentile(means, [100 * tail, 100 * (1 - tail)])
        return BootstrapResult(estimate, float(low), float(high), confidence, n, n_resamples, seed,
                               note=f"resampled as counts of {values.shape[0]} distinct differences")
    result = stats.bootstrap((differences,), np.mean, n_resamples=n_resamples,
                             batch=max(1, _BATCH_ELEMENTS // n), vectorized=True,
                             confidence_level=confidence, method="percentile",
                             rng=np.random.default_rng(seed))
    interval = result.confidence_interval
    return BootstrapResult(estimate, float(interval.low), float(interval.high), confidence, n,
                           n_resamples, seed)


def resample_counts(n: int, n_resamples: int, seed: int) -> np.ndarray:
    """How often each of ``n`` examples is drawn in each bootstrap resample, shape (R, n).

    The draws are ``numpy.random.default_rng(seed).integers(0, n, (R, n))``, the same
    indices ``scipy.stats.bootstrap`` draws with that generator.
    """
    if n < 1 or n_resamples < 1:
        raise ValueError(f"need n >= 1 and n_resamples >= 1, got n={n}, "
                         f"n_resamples={n_resamples}")
    rng = np.random.default_rng(seed)
    counts = np.empty((n_resamples, n), dtype=np.int64)
    step = max(1, _BATCH_ELEMENTS // n)
    for start in range(0, n_resamples, step):
        stop = min(start + step, n_resamples)
        indices = rng.integers(0, n, (stop - start, n))
        flat = (indices + n * np.arange(stop - start)[:, None]).ravel()
        counts[start:stop] = np.bincount(flat, minlength=(stop - start) * n).reshape(-1, n)
    return counts


def paired_bootstrap_corpus(score_a: Callable[[np.ndarray], np.ndarray],
                            score_b: Callable[[np.ndarray], np.ndarray], n: int, *,
                            n_resamples: int = 1000, seed: int = 0,
                            confidence: float = 0.95) -> BootstrapResult:
    """Percentile bootstrap CI of a corpus-level score difference (e.g. corpus BLEU b - a).

    ``score_a`` / ``score_b`` map a (resamples, n) matrix of draw counts to one corpus score
    per resample (``BleuResult.resampled_scores``); both see the same resamples. The
    estimate is the difference on the full set (every count 1).
    """
    check_probability(confidence, "confidence")
    full = np.ones((1, n), dtype=np.int64)
    estimate = float(score_b(full)[0] - score_a(full)[0])
    if n < 2:
        return BootstrapResult(estimate, math.nan, math.nan, confidence, n, n_resamples, seed,
                               note="a bootstrap interval needs at least 2 examples")
    counts = resample_counts(n, n_resamples, seed)
    differences = np.asarray(score_b(counts), dtype=float) - np.asarray(score_a(counts),
                                                                         dtype=float)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(differences, [tail, 1.0 - tail])
    return BootstrapResult(estimate, float(low), float(high), confidence, n, n_resamples, seed)

"""A/B comparison of a corpus-level statistic (corpus BLEU) by paired bootstrap resampling.

Mirrors ``sacrebleu.significance`` (``_paired_bs_test``, after Koehn 2004 and the Moses script
``bootstrap-hypothesis-difference-significance.pl``): each example's sufficient statistics are
computed once; every resample draws ``n`` examples with replacement
(``numpy.random.default_rng(seed)``, the draws of sacrebleu's ``rng.choice``), re-adds their
statistics and recomputes the corpus score of both systems on the same draws. The two-sided
p-value is sacrebleu's: with ``D* = |score_b* - score_a*|`` centred on its mean,
``p = (#{D* - mean(D*) > |Δ|} + 1) / (R + 1)``. One-sided p-values centre the signed replicates
the same way. The interval is the percentile interval of the resampled difference, so the
value (corpus score on the full set), the interval and the test all describe corpus BLEU.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from harness.stats._inputs import check_alternative, check_probability
from harness.stats.comparison import Comparison, _verdict
from harness.stats.resampling import resample_counts

METHOD = "paired bootstrap of corpus score (sacrebleu paired_bs)"


def bootstrap_p_value(replicates: np.ndarray, observed: float, alternative: str) -> float:
    """sacrebleu's bootstrap p-value of ``observed`` given resampled differences (centred under H0)."""
    values = np.asarray(replicates, dtype=float)
    if alternative == "two-sided":
        spread = np.abs(values)
        centred = spread - spread.mean()
        extreme = int(np.sum(centred > abs(observed)))
    else:
        centred = values - values.mean()
        extreme = int(np.sum(centred > observed)) if alternative == "greater" else int(np.sum(centred < observed))
    return (extreme + 1) / (values.shape[0] + 1)


def compare_corpus(score_a: Callable[[np.ndarray], np.ndarray], score_b: Callable[[np.ndarray], np.ndarray],
                   n: int, *, alternative: str = "two-sided", alpha: float = 0.05, power: float = 0.8,
                   confidence: float = 0.95, n_resamples: int = 1000, seed: int = 12345) -> Comparison:
    """Compare corpus scores of ``b`` and ``a`` on the same ``n`` examples (sacrebleu's paired bootstrap).

    ``score_a`` / ``score_b`` map a (resamples, n) matrix of draw counts to one corpus score per
    row. The default seed and resample count are sacrebleu's (``SACREBLEU_SEED`` 12345, 1000).
    The MDE is ``(z_(1-alpha') + z_power) * sd`` of the resampled difference (``alpha'`` = alpha,
    halved when two-sided).
    """
    from scipy import special

    check_alternative(alternative)
    check_probability(alpha, "alpha")
    check_probability(power, "power")
    check_probability(confidence, "confidence")
    full = np.ones((1, n), dtype=np.int64)
    mean_a, mean_b = float(score_a(full)[0]), float(score_b(full)[0])
    difference = mean_b - mean_a
    interval, p_value, detectable, note = (math.nan, math.nan), math.nan, math.nan, ""
    if n < 2 or n_resamples < 1:
        note = "a bootstrap needs at least 2 examples and 1 resample"
    else:
        counts = resample_counts(n, n_resamples, seed)
        replicates = np.asarray(score_b(counts), dtype=float) - np.asarray(score_a(counts), dtype=float)
        tail = (1.0 - confidence) / 2.0
        low, high = np.quantile(replicates, [tail, 1.0 - tail])
        interval = (float(low), float(high))
        p_value = bootstrap_p_value(replicates, difference, alternative)
        level = alpha / 2 if alternative == "two-sided" else alpha
        detectable = float((special.ndtri(1 - level) + special.ndtri(power)) * np.std(replicates, ddof=1))
        if np.all(replicates == 0) and difference == 0:
            note = "identical score vectors: every resample scores both systems alike"
            p_value = 1.0
    result = Comparison(kind="corpus", method=METHOD, n=n, mean_a=mean_a, mean_b=mean_b, difference=difference,
                        relative_improvement=difference / abs(mean_a) if mean_a != 0 else None,
                        ci=interval, confidence=confidence, statistic=difference, p_value=p_value,
                        mde=detectable, alpha=alpha, power=power, alternative=alternative, verdict="",
                        note=note)
    return replace(result, verdict=_verdict(result))

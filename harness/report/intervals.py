"""Confidence intervals of each candidate's metrics for the report tables and bar plots.

The interval of a metric is the percentile bootstrap CI of the mean of its per-example
scores: :func:`harness.stats.paired_bootstrap` of the scores against a zero vector, which
resamples examples exactly like the paired comparisons do (fixed seed, so reports repeat).
Where the aggregate is not the mean of the per-example scores (corpus BLEU vs. sentence
BLEU) the interval is of the per-example mean and is flagged ``per_example_mean``.
Metrics without per-example scores get no interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness.results import PAIRED_SCORE, EvalResult

CONFIDENCE = 0.95
N_RESAMPLES = 2000
SEED = 0


@dataclass(frozen=True)
class Interval:
    """A CI of one metric; ``per_example_mean`` when it is not the aggregate's own interval."""

    low: float
    high: float
    per_example_mean: float
    of_aggregate: bool


def metric_intervals(result: EvalResult, *, confidence: float = CONFIDENCE,
                     n_resamples: int = N_RESAMPLES, seed: int = SEED) -> dict[str, Interval]:
    """Bootstrap CIs of every metric of ``result`` that has per-example scores."""
    from harness.stats import paired_bootstrap

    intervals = {}
    for metric, value in result.metrics.items():
        score_name = PAIRED_SCORE.get(metric, (None,))[0]
        scores = result.per_example.get(score_name) if score_name else None
        if not scores:
            continue
        boot = paired_bootstrap([0.0] * len(scores), scores, n_resamples=n_resamples, seed=seed,
                                confidence=confidence)
        aggregate = float(value) if value is not None else math.nan
        scale = max(1.0, abs(boot.estimate))
        same = math.isfinite(aggregate) and abs(aggregate - boot.estimate) <= 1e-9 * scale
        intervals[metric] = Interval(boot.low, boot.high, boot.estimate, same)
    return intervals

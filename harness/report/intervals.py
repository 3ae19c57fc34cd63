"""Confidence intervals of each candidate's metrics for the report tables and bar plots.

The interval of a metric is the percentile bootstrap CI of the mean of its per-example
scores: :func:`harness.stats.paired_bootstrap` of the scores against a zero vector, which
resamples examples exactly like the paired comparisons do (fixed seed, so reports repeat).
A corpus metric (BLEU, chrF, TER) gets the percentile bootstrap CI of its corpus score itself: the
per-example sufficient statistics (``details["<metric>_stats"]``) are resampled and re-added by the
metric's own :class:`~harness.metrics.corpus_metric.CorpusMetric`, as sacrebleu's significance
module does, so the row reads ``corpus score [CI of the corpus score]``. Where only per-example scores
exist and the aggregate is not their mean, the interval is of the per-example mean and is flagged.
Metrics without per-example scores get no interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from harness.metrics.registry import corpus_metric, corpus_stats_table
from harness.results import PAIRED_SCORE, EvalResult
from harness.stats import paired_bootstrap, resample_counts

CORPUS_STATS = corpus_stats_table()

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


def corpus_interval(metric: str, stats: list[list[float]], value: float, *, confidence: float = CONFIDENCE,
                    n_resamples: int = N_RESAMPLES, seed: int = SEED) -> Interval:
    """Percentile bootstrap CI of corpus ``metric`` from its per-example sufficient statistics."""

    n = len(stats)
    corpus = corpus_metric(metric)
    if n < 2 or corpus is None:
        return Interval(math.nan, math.nan, value, True)
    scores = corpus.resampled_scores(stats, resample_counts(n, n_resamples, seed))
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(scores, [tail, 1.0 - tail])
    return Interval(float(low), float(high), value, True)


def metric_intervals(result: EvalResult, *, confidence: float = CONFIDENCE,
                     n_resamples: int = N_RESAMPLES, seed: int = SEED) -> dict[str, Interval]:
    """Bootstrap CIs of every metric of ``result`` that has per-example scores."""

    intervals = {}
    for metric, value in result.metrics.items():
        key = CORPUS_STATS.get(metric)
        if key and key in result.details and value is not None:
            intervals[metric] = corpus_interval(metric, result.details[key], float(value),
                                                confidence=confidence, n_resamples=n_resamples, seed=seed)
            continue
        score_name = PAIRED_SCORE.get(metric, (None,))[0]
        scores = result.per_example.get(score_name) if score_name else None
        scores = [s for s in scores if s is not None] if scores else None  # None: not scored there
        if not scores:
            continue
        boot = paired_bootstrap([0.0] * len(scores), scores, n_resamples=n_resamples, seed=seed,
                                confidence=confidence)
        aggregate = float(value) if value is not None else math.nan
        scale = max(1.0, abs(boot.estimate))
        same = math.isfinite(aggregate) and abs(aggregate - boot.estimate) <= 1e-9 * scale
        intervals[metric] = Interval(boot.low, boot.high, boot.estimate, same)
    return intervals

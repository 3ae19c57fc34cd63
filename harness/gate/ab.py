"""A/B comparison of two evaluated candidates on one metric (pure): the test that fits the
statistic, and the degenerate-model flags of both sides.

Means of per-example scores go to :func:`harness.stats.compare` (McNemar for 0/1 scores, paired
t-test otherwise); a corpus metric (BLEU, chrF, TER) goes to :func:`harness.stats.compare_corpus`,
sacrebleu's paired bootstrap of the corpus score re-added from each example's sufficient statistics
by the metric itself, so the A/B table tests the number the candidates table shows. ``flags`` lists each side's warnings (constant predictor,
unparsed replies) prefixed with the candidate's name, so a suite can assert on them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from harness.gate.verdict import CORPUS_STATS
from harness.metrics.registry import corpus_metric
from harness.results import EvalResult
from harness.stats import compare, compare_corpus


def degenerate_flags(result: EvalResult) -> list[str]:
    """The candidate's degenerate-model warnings, each prefixed with its name ("lora: ...")."""
    flags = (result.details.get("degenerate") or {}).get("flags") or []
    return [f"{result.candidate}: {flag}" for flag in flags]


def _aligned_stats(a: EvalResult, b: EvalResult, key: str) -> tuple[np.ndarray, np.ndarray]:
    """Both results' per-example statistics rows in ``a``'s example order."""
    where_b = {example_id: i for i, example_id in enumerate(b.example_ids)}
    rows_b = b.details[key]
    stats_a = np.asarray(a.details[key])
    stats_b = np.asarray([rows_b[where_b[i]] for i in a.example_ids])
    return stats_a, stats_b


def compare_paired(a: EvalResult, b: EvalResult, metric: str, scores_a: Sequence[float],
                   scores_b: Sequence[float], kind: str, *, alpha: float = 0.05) -> Any:
    """The comparison of ``b`` against ``a`` (scores already paired in ``a``'s order), with flags."""

    key, corpus = CORPUS_STATS.get(metric), corpus_metric(metric)
    if key and corpus is not None and key in a.details and key in b.details:
        stats_a, stats_b = _aligned_stats(a, b, key)
        result = compare_corpus(lambda counts: corpus.resampled_scores(stats_a, counts),
                                lambda counts: corpus.resampled_scores(stats_b, counts), len(a.example_ids),
                                alpha=alpha)
    else:
        result = compare(scores_a, scores_b, kind=kind, alpha=alpha)
    return replace(result, flags=tuple(degenerate_flags(a) + degenerate_flags(b)))

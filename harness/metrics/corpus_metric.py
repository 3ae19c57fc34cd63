"""Corpus-level metrics that own their statistics (sacrebleu's ``Metric`` pattern).

A corpus metric reduces each (hypothesis, references) pair to a row of sufficient statistics
(``_extract_corpus_statistics``) and scores any *sum* of rows (``_compute_score_from_stats``).
Everything that resamples a corpus score — report intervals, the gate's paired bootstrap, slice
tests, A/B comparisons, slice subsets — goes through :meth:`CorpusMetric.resampled_scores`, so a
new corpus metric is gated and reported without any of those modules naming it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.metrics._common import check_same_length, check_strings, normalize_references


@dataclass(frozen=True, eq=False)
class CorpusScore:
    """A corpus score, each example's own (sentence) score, the statistics rows and the signature."""

    score: float
    sentence_scores: list[float]
    stats: np.ndarray
    signature: str


class CorpusMetric(ABC):
    """A metric whose corpus value is a function of the summed per-example statistics."""

    #: The metric's display name in legends ("corpus BLEU").
    label: str = "corpus score"
    #: numpy dtype of a statistics row (counts are integers; TER's reference lengths are averages).
    dtype: Any = np.int64

    @abstractmethod
    def score(self, predictions: Sequence[str], references: Sequence[str] | Sequence[Sequence[str]],
              options: Mapping[str, Any]) -> CorpusScore:
        """The corpus score with per-example statistics; ``options`` holds this metric's resolved options."""

    @abstractmethod
    def score_from_stats(self, summed: np.ndarray) -> float:
        """The corpus score of one summed statistics row."""

    def resampled_scores(self, stats: np.ndarray | Sequence[Sequence[float]], counts: np.ndarray) -> np.ndarray:
        """The corpus score of each resample: row r re-adds the statistics ``counts[r] @ stats``.

        ``counts`` has shape (resamples, n), how often each example is drawn (sacrebleu's
        significance module resamples the same way).
        """
        table = np.asarray(stats, dtype=self.dtype)
        weights = np.asarray(counts, dtype=np.int64)
        if table.ndim != 2:
            raise ValueError(f"stats must have shape (n, columns), got {table.shape}")
        if weights.ndim != 2 or weights.shape[1] != table.shape[0]:
            raise ValueError(f"counts must have shape (resamples, {table.shape[0]}), got {weights.shape}")
        return np.array([self.score_from_stats(row) for row in weights @ table], dtype=float)

    def subset_score(self, stats: np.ndarray | Sequence[Sequence[float]]) -> float:
        """The corpus score of the examples whose rows are ``stats`` (each counted once)."""
        return float(self.resampled_scores(stats, np.ones((1, len(stats)), dtype=np.int64))[0])


def reference_streams(references: Sequence[str] | Sequence[Sequence[str]]) -> list[list[str | None]]:
    """sacrebleu's layout: one stream per reference slot, ``None`` where an example has fewer."""
    per_example = normalize_references(references)
    width = max(len(refs) for refs in per_example)
    return [[refs[k] if k < len(refs) else None for refs in per_example] for k in range(width)]


def sacrebleu_signature(metric: Any, name: str, kind: str) -> str:
    """sacrebleu's own signature, prefixed with the metric name, version renamed ``sacrebleu``."""
    text = metric.get_signature().format()
    head, _, version = text.rpartition("|version:")
    return f"{name}:{kind}|{head}|sacrebleu:{version}"


def sacrebleu_statistics(metric: Any, predictions: Sequence[str],
                         references: Sequence[str] | Sequence[Sequence[str]], dtype: Any) -> np.ndarray:
    """sacrebleu's per-segment statistics: the rows its ``corpus_score`` sums and its significance
    tests resample, one per example."""
    hypotheses = check_strings(predictions, "predictions")
    check_same_length(hypotheses, references)
    rows = metric._extract_corpus_statistics(hypotheses, reference_streams(references))
    return np.asarray(rows, dtype=dtype).reshape(len(hypotheses), -1)

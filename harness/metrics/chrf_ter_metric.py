"""chrF, chrF++ and TER through sacrebleu, corpus-level, keeping each example's statistics.

sacrebleu reduces each (hypothesis, references) pair to a row of statistics and scores any sum of
rows (``_extract_corpus_statistics`` / ``_compute_score_from_stats``): chrF / chrF++ to matched,
hypothesis and reference n-gram counts per character (and word) order, TER to the fewest edits
and the average reference length. The corpus score, each example's sentence score and every
bootstrap resample are sacrebleu's own function of such a sum, with sacrebleu's defaults
(``corpus_chrf``: char order 6, beta 2; chrF++: word order 2; ``corpus_ter``: lowercased,
no normalisation). TER is an error rate: lower is better.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from harness.metrics.corpus_metric import (
    CorpusMetric,
    CorpusScore,
    sacrebleu_signature,
    sacrebleu_statistics,
)


class SacrebleuCorpusMetric(CorpusMetric):
    """A sacrebleu metric (chrF or TER) whose corpus score is a function of summed segment statistics."""

    def __init__(self, name: str, metric_class: str, label: str, dtype: Any, **settings: Any) -> None:
        self.name, self.metric_class, self.label, self.dtype = name, metric_class, label, dtype
        self.settings = settings

    def _metric(self) -> Any:
        from sacrebleu import metrics

        return getattr(metrics, self.metric_class)(**self.settings)

    def score(self, predictions: Sequence[str], references: Sequence[str] | Sequence[Sequence[str]],
              options: Mapping[str, Any]) -> CorpusScore:
        """The corpus score equal to sacrebleu's ``corpus_score``; per-example scores equal its sentence scores."""
        metric = self._metric()
        stats = sacrebleu_statistics(metric, predictions, references, self.dtype)
        sentences = [self.score_from_stats(row) for row in stats]
        return CorpusScore(self.score_from_stats(stats.sum(axis=0)), sentences, stats,
                           sacrebleu_signature(metric, self.name, "corpus"))

    def score_from_stats(self, summed: np.ndarray) -> float:
        """sacrebleu's score of one summed statistics row."""
        row = [int(x) if self.dtype == np.int64 else float(x) for x in np.asarray(summed).tolist()]
        return float(self._metric()._compute_score_from_stats(row).score)

    def resampled_scores(self, stats: np.ndarray | Sequence[Sequence[float]], counts: np.ndarray) -> np.ndarray:
        """The score of each resample, with one sacrebleu metric object for all of them."""
        metric = self._metric()
        table = np.asarray(stats, dtype=self.dtype)
        weights = np.asarray(counts, dtype=np.int64)
        if table.ndim != 2 or weights.ndim != 2 or weights.shape[1] != table.shape[0]:
            raise ValueError(f"stats (n, columns) and counts (resamples, n) disagree: {table.shape}, {weights.shape}")
        cast = int if self.dtype == np.int64 else float
        return np.array([metric._compute_score_from_stats([cast(x) for x in row]).score
                         for row in (weights @ table).tolist()], dtype=float)


CHRF = SacrebleuCorpusMetric("chrf", "CHRF", "corpus chrF", np.int64)
CHRF_PLUS_PLUS = SacrebleuCorpusMetric("chrfpp", "CHRF", "corpus chrF++", np.int64, word_order=2)
TER = SacrebleuCorpusMetric("ter", "TER", "corpus TER", np.float64)

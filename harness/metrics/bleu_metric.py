"""BLEU through sacrebleu, keeping each example's sufficient statistics.

sacrebleu reduces every (hypothesis, references) pair to ten integers: hypothesis length,
closest reference length, and matched / total n-gram counts for n = 1..4. Corpus BLEU is a
function of the *sum* of these rows, so the harness extracts them once and re-adds them
for the corpus score, for per-example sentence BLEU and for bootstrap resamples, all with
sacrebleu's own ``BLEU`` implementation.

Defaults are sacrebleu's: corpus BLEU uses the ``13a`` tokenizer, mixed case, ``exp``
smoothing and no effective order (``sacrebleu.corpus_bleu``); sentence BLEU uses ``13a``,
``exp`` smoothing (NIST geometric sequence: the k-th zero-match order gets precision
1 / (2^k * total)) and ``effective_order=True`` (``sacrebleu.sentence_bleu``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.metrics._common import mean
from harness.metrics.corpus_metric import (
    CorpusMetric,
    CorpusScore,
    sacrebleu_signature,
    sacrebleu_statistics,
)

STATS_COLUMNS = ("sys_len", "ref_len", "correct_1", "correct_2", "correct_3", "correct_4",
                 "total_1", "total_2", "total_3", "total_4")


@dataclass(frozen=True, eq=False)
class BleuResult:
    """Corpus BLEU (0–100) with sacrebleu's details and the per-example statistics.

    ``stats`` has one row per example with the columns in ``STATS_COLUMNS``; the corpus
    score is ``score_from_stats(stats.sum(axis=0))``.
    """

    score: float
    precisions: list[float]
    bp: float
    sys_len: int
    ref_len: int
    stats: np.ndarray
    tokenize: str
    lowercase: bool
    signature: str
    sentence_signature: str

    @property
    def n(self) -> int:
        """Number of examples scored."""
        return int(self.stats.shape[0])

    def sentence_bleu(self) -> SentenceBleuResult:
        """Per-example sentence BLEU from the same statistics (no second tokenisation pass).

        Equal to ``sentence_bleu(predictions, references)`` with the same options.
        """
        return _sentence_result(self.stats, self.sentence_signature)

    def score_from_stats(self, summed: Sequence[int] | np.ndarray) -> float:
        """Corpus BLEU of a summed statistics row (e.g. a bootstrap resample), via sacrebleu."""
        return corpus_bleu_from_stats(summed)

    def resampled_scores(self, counts: np.ndarray) -> np.ndarray:
        """Corpus BLEU of each resample, given how often each example is drawn in it.

        ``counts`` has shape (resamples, n); row r's statistics are ``counts[r] @ stats``.
        """
        return resampled_corpus_bleu(self.stats, counts)


@dataclass(frozen=True, eq=False)
class SentenceBleuResult:
    """Per-example smoothed sentence BLEU (0–100, sacrebleu ``sentence_bleu`` defaults)."""

    scores: list[float]
    stats: np.ndarray
    signature: str

    @property
    def n(self) -> int:
        """Number of examples scored."""
        return len(self.scores)

    @property
    def mean(self) -> float:
        """Mean sentence BLEU over the examples (not the same number as corpus BLEU)."""
        return mean(self.scores)


def _metric(*, tokenize: str, lowercase: bool, effective_order: bool):
    from sacrebleu.metrics import BLEU

    if tokenize not in BLEU.TOKENIZERS:
        raise ValueError(f"unknown sacrebleu tokenizer {tokenize!r}; choose one of "
                         f"{', '.join(BLEU.TOKENIZERS)}")
    return BLEU(tokenize=tokenize, lowercase=lowercase, smooth_method="exp",
                effective_order=effective_order)


def _signature(metric, kind: str) -> str:
    return sacrebleu_signature(metric, "bleu", kind)


def _statistics(metric, predictions: Sequence[str],
                references: Sequence[str] | Sequence[Sequence[str]]) -> np.ndarray:
    return sacrebleu_statistics(metric, predictions, references, np.int64)


def _score_of(summed: Sequence[int] | np.ndarray, *, effective_order: bool):
    """sacrebleu's BLEU of one summed statistics row with ``exp`` smoothing."""
    from sacrebleu.metrics import BLEU

    row = [int(x) for x in summed]  # fresh ints: sacrebleu may update the lists in place
    return BLEU.compute_bleu(correct=row[2:6], total=row[6:10], sys_len=row[0], ref_len=row[1],
                             smooth_method="exp", effective_order=effective_order)


def bleu(predictions: Sequence[str], references: Sequence[str] | Sequence[Sequence[str]], *,
         tokenize: str = "13a", lowercase: bool = False) -> BleuResult:
    """Corpus BLEU equal to ``sacrebleu.corpus_bleu(predictions, streams)`` with its defaults.

    ``references`` holds one string per example, or one list of strings per example when an
    example has several references (the counts may differ between examples).
    """
    metric = _metric(tokenize=tokenize, lowercase=lowercase, effective_order=False)
    stats = _statistics(metric, predictions, references)
    result = _score_of(stats.sum(axis=0), effective_order=False)
    sentence_metric = _metric(tokenize=tokenize, lowercase=lowercase, effective_order=True)
    sentence_metric.num_refs = metric.num_refs  # set by sacrebleu while reading the references
    return BleuResult(score=float(result.score), precisions=[float(p) for p in result.precisions],
                      bp=float(result.bp), sys_len=int(result.sys_len),
                      ref_len=int(result.ref_len), stats=stats, tokenize=tokenize,
                      lowercase=lowercase, signature=_signature(metric, "corpus"),
                      sentence_signature=_signature(sentence_metric, "sentence"))


def sentence_bleu(predictions: Sequence[str],
                  references: Sequence[str] | Sequence[Sequence[str]], *,
                  tokenize: str = "13a", lowercase: bool = False) -> SentenceBleuResult:
    """Per-example BLEU equal to ``sacrebleu.sentence_bleu(p, refs)`` with its defaults.

    The statistics are extracted once for all examples; each score is then sacrebleu's
    ``exp``-smoothed, effective-order BLEU of that example's row.
    """
    metric = _metric(tokenize=tokenize, lowercase=lowercase, effective_order=True)
    stats = _statistics(metric, predictions, references)
    return _sentence_result(stats, _signature(metric, "sentence"))


def _sentence_result(stats: np.ndarray, signature: str) -> SentenceBleuResult:
    rows = stats.tolist()  # plain ints, one list per example
    scores = [float(_score_of(row, effective_order=True).score) for row in rows]
    return SentenceBleuResult(scores=scores, stats=stats, signature=signature)


def corpus_bleu_from_stats(summed: Sequence[int] | np.ndarray) -> float:
    """Corpus BLEU (sacrebleu's ``exp`` smoothing, no effective order) of one summed row."""
    row = np.asarray(summed)
    if row.shape != (len(STATS_COLUMNS),):
        raise ValueError(f"a summed BLEU statistics row has {len(STATS_COLUMNS)} entries "
                         f"({', '.join(STATS_COLUMNS)}), got shape {row.shape}")
    return float(_score_of(row, effective_order=False).score)


def resampled_corpus_bleu(stats: np.ndarray | Sequence[Sequence[int]], counts: np.ndarray) -> np.ndarray:
    """Corpus BLEU of each resample: row r re-adds the per-example statistics ``counts[r] @ stats``.

    ``stats`` has one row of ``STATS_COLUMNS`` per example (``BleuResult.stats``); ``counts`` has
    shape (resamples, n), how often each example is drawn. The statistics are computed once and
    re-added, as in sacrebleu's paired bootstrap (``sacrebleu.significance``).
    """
    table = np.asarray(stats, dtype=np.int64)
    weights = np.asarray(counts, dtype=np.int64)
    if table.ndim != 2 or table.shape[1] != len(STATS_COLUMNS):
        raise ValueError(f"stats must have shape (n, {len(STATS_COLUMNS)}), got {table.shape}")
    if weights.ndim != 2 or weights.shape[1] != table.shape[0]:
        raise ValueError(f"counts must have shape (resamples, {table.shape[0]}), got {weights.shape}")
    return np.array([_score_of(row, effective_order=False).score for row in weights @ table], dtype=float)


class CorpusBleu(CorpusMetric):
    """Corpus BLEU as a corpus metric: per-example scores are sacrebleu's sentence BLEU."""

    label = "corpus BLEU"
    dtype = np.int64

    def score(self, predictions: Sequence[str], references: Sequence[str] | Sequence[Sequence[str]],
              options: Mapping[str, Any]) -> CorpusScore:
        """Corpus BLEU with the ``bleu_tokenize`` option; sentence BLEU from the same statistics."""
        corpus = bleu(list(predictions), list(references), tokenize=str(options.get("bleu_tokenize", "13a")))
        return CorpusScore(corpus.score, list(corpus.sentence_bleu().scores), corpus.stats, corpus.signature)

    def score_from_stats(self, summed: np.ndarray) -> float:
        """sacrebleu's corpus BLEU of one summed row."""
        return corpus_bleu_from_stats(summed)

    def resampled_scores(self, stats: np.ndarray | Sequence[Sequence[float]], counts: np.ndarray) -> np.ndarray:
        """Corpus BLEU of each resample (checks the column count)."""
        return resampled_corpus_bleu(np.asarray(stats, dtype=np.int64), counts)

"""Calibration of label probabilities (pure): Brier score per example, expected calibration error
and the reliability diagram's bins.

Brier score (Brier 1950) of one example: ``sum_k (p_k - y_k)^2`` over the labels, ``y`` the one-hot
true label; for two labels the sum over the positive label alone, which is what
``sklearn.metrics.brier_score_loss`` computes (its mean over examples equals ours). Expected
calibration error (Guo et al. 2017, "On Calibration of Modern Neural Networks", eq. 3): examples
binned by confidence (the top label's probability) into equal-width bins ``((i-1)/M, i/M]``,
``ECE = sum_m |B_m|/n * |acc(B_m) - conf(B_m)|``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_BINS = 10


def softmax(scores: Sequence[Sequence[float]]) -> list[list[float]]:
    """Rows of scores (log-likelihoods or logits) as probability rows (``scipy.special.softmax``)."""
    from scipy.special import softmax as scipy_softmax

    if not len(scores):
        return []
    return scipy_softmax(np.asarray(scores, dtype=float), axis=1).tolist()


def true_indices(references: Sequence[str], labels: Sequence[str]) -> list[int]:
    """The position of each reference in ``labels`` (ValueError naming an unknown label)."""
    where = {label: i for i, label in enumerate(labels)}
    unknown = [r for r in references if r not in where]
    if unknown:
        raise ValueError(f"reference {unknown[0]!r} is not one of the labels {list(labels)}")
    return [where[r] for r in references]


def brier_per_example(probabilities: Sequence[Sequence[float]], truth: Sequence[int]) -> list[float]:
    """Each example's Brier score; two labels: ``(1 - p_true)^2`` (sklearn's binary Brier)."""
    p = np.asarray(probabilities, dtype=float)
    if p.ndim != 2 or p.shape[0] != len(truth):
        raise ValueError(f"expected one probability row per example, got shape {p.shape} for {len(truth)} examples")
    onehot = np.zeros_like(p)
    onehot[np.arange(len(truth)), np.asarray(truth, dtype=int)] = 1.0
    squared = (p - onehot) ** 2
    scores = squared.sum(axis=1) / 2.0 if p.shape[1] == 2 else squared.sum(axis=1)
    return scores.tolist()


@dataclass(frozen=True)
class ReliabilityBin:
    """One confidence bin of the reliability diagram."""

    lower: float
    upper: float
    count: int
    confidence: float  # mean top-label probability in the bin (NaN when empty)
    accuracy: float    # share of the bin's examples whose top label is right (NaN when empty)


def confidences_and_hits(probabilities: Sequence[Sequence[float]], truth: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Top-label probability and whether the top label is the true one, per example (ties: first label)."""
    p = np.asarray(probabilities, dtype=float)
    top = p.argmax(axis=1)
    return p.max(axis=1), (top == np.asarray(truth, dtype=int)).astype(float)


def _bin_index(confidence: np.ndarray, bins: int) -> np.ndarray:
    """Bin of each confidence for bins ``((i-1)/M, i/M]`` (a confidence of 0 goes to the first)."""
    return np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)


def ece_from_arrays(confidence: np.ndarray, hits: np.ndarray, bins: int = DEFAULT_BINS) -> float:
    """Expected calibration error of top-label confidences and 0/1 hits (Guo et al. 2017, eq. 3)."""
    n = confidence.shape[-1]
    if n == 0:
        return math.nan
    index = _bin_index(confidence, bins)
    counts = np.bincount(index, minlength=bins)
    gap = np.bincount(index, weights=hits - confidence, minlength=bins)  # sum over bin of (acc - conf)
    return float(np.abs(gap).sum() / n) if counts.sum() else math.nan


def reliability_bins(confidence: np.ndarray, hits: np.ndarray, bins: int = DEFAULT_BINS) -> list[ReliabilityBin]:
    """The reliability diagram: per bin, its range, size, mean confidence and accuracy."""
    index = _bin_index(confidence, bins)
    rows = []
    for i in range(bins):
        members = index == i
        count = int(members.sum())
        rows.append(ReliabilityBin(i / bins, (i + 1) / bins, count,
                                   float(confidence[members].mean()) if count else math.nan,
                                   float(hits[members].mean()) if count else math.nan))
    return rows


@dataclass(frozen=True)
class EceInterval:
    """ECE of the candidate and the reference, their paired difference, and percentile bootstrap CIs."""

    candidate: float
    candidate_ci: tuple[float, float]
    reference: float
    reference_ci: tuple[float, float]
    difference: float
    difference_ci: tuple[float, float]
    resamples: int
    confidence: float


def ece_intervals(reference: tuple[np.ndarray, np.ndarray], candidate: tuple[np.ndarray, np.ndarray], *,
                  bins: int = DEFAULT_BINS, resamples: int = 1000, seed: int = 0,
                  confidence: float = 0.95) -> EceInterval:
    """Both ECEs and ``candidate - reference`` with percentile bootstrap CIs (examples resampled in
    pairs: ``scipy.stats.bootstrap(..., paired=True, method="percentile")``)."""
    from scipy import stats

    (conf_a, hits_a), (conf_b, hits_b) = reference, candidate

    def statistic(which: str):
        def ece(ca, ha, cb, hb):
            a, b = ece_from_arrays(ca, ha, bins), ece_from_arrays(cb, hb, bins)
            return {"a": a, "b": b, "d": b - a}[which]
        return ece

    intervals = {}
    for which in ("a", "b", "d"):
        if len(conf_a) < 2:
            intervals[which] = (math.nan, math.nan)
            continue
        out = stats.bootstrap((conf_a, hits_a, conf_b, hits_b), statistic(which), paired=True, vectorized=False,
                              n_resamples=resamples, method="percentile", confidence_level=confidence,
                              rng=np.random.default_rng(seed))
        intervals[which] = (float(out.confidence_interval.low), float(out.confidence_interval.high))
    a, b = ece_from_arrays(conf_a, hits_a, bins), ece_from_arrays(conf_b, hits_b, bins)
    return EceInterval(b, intervals["b"], a, intervals["a"], b - a, intervals["d"], resamples, confidence)

"""Corpus BLEU non-inferiority at the gate's boundary: the jackknife score bound holds its size where the bootstrap did not.

The boundary is built as a finite population of per-sentence BLEU statistics (sacrebleu's ten
columns) for the baseline ``a`` and the candidate ``b`` whose *population* corpus BLEU difference is
exactly ``-margin``: sentences of 10–30 tokens, unigram precision 0.5–0.9 and an order-k precision
its k-th power; the candidate breaks sentences one at a time (precision 0.25, what a broken output
looks like) — after fixing some first (precision + 0.3) in the "breaks and fixes" design — until the
population's corpus BLEU has dropped by the nominal tolerance, and the test's margin is the drop
that this population actually has. Eval sets are drawn with replacement from it, so a 5 % test may
pass at most 5 % of them (+ 2.5 SE for the simulation's own noise).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from harness.metrics.bleu_metric import corpus_bleu_from_stats
from harness.metrics.registry import info
from harness.stats import corpus_margin_test
from harness.stats.jackknife import score_bound_arrays
from harness.stats.margin import bootstrap_margin_arrays
from harness.stats.resampling import resample_counts

ALPHA = 0.05
RUNS = 1000
LIMIT = ALPHA + 2.5 * math.sqrt(ALPHA * (1 - ALPHA) / RUNS)
SIZES = (30, 50, 100, 200, 500)
TOLERANCES = (0.5, 1.0, 2.0)
POPULATION = 4000


def corpus_bleu(summed: np.ndarray) -> np.ndarray:
    """Corpus BLEU (sacrebleu's ``exp`` smoothing) of summed statistics rows, vectorised over leading axes."""
    s = np.asarray(summed, dtype=float)
    sys_len, ref_len, correct, total = s[..., 0], s[..., 1], s[..., 2:6], s[..., 6:10]
    with np.errstate(divide="ignore", invalid="ignore"):
        bp = np.where(sys_len < ref_len, np.exp(1 - ref_len / sys_len), 1.0)
        zero = correct == 0
        precision = np.where(zero, 100.0 / (2.0 ** np.cumsum(zero, axis=-1) * total), 100.0 * correct / total)
        score = bp * np.exp(np.mean(np.log(precision), axis=-1))
    return np.where(np.any(correct > 0, axis=-1), score, 0.0)


def _rows(length: np.ndarray, precision: np.ndarray) -> np.ndarray:
    order = np.arange(1, 5)
    total = np.maximum(length[:, None] - order + 1, 0)
    correct = np.round(total * precision[:, None] ** order)
    return np.concatenate([length[:, None], length[:, None], correct, total], axis=1).astype(np.int64)


def population(tolerance: float, fixes: bool, seed: int = 1) -> tuple[np.ndarray, np.ndarray, float]:
    """(a, b, margin): sentence statistics whose population corpus BLEU(b) − BLEU(a) is exactly −margin.

    ``tolerance`` 0 with ``fixes``: as many broken as it takes to bring the difference closest to 0.
    """
    rng = np.random.default_rng(seed)
    length = rng.integers(10, 31, POPULATION)
    precision = rng.uniform(0.5, 0.9, POPULATION)
    a = _rows(length, precision)
    order = rng.permutation(POPULATION)
    fixed = order[: POPULATION // (50 if tolerance == 0 else 20)] if fixes else order[:0]
    improved = precision.copy()
    improved[fixed] = np.minimum(0.95, precision[fixed] + 0.3)
    b = _rows(length, improved)
    broken = _rows(length, np.full(POPULATION, 0.25))
    base = float(corpus_bleu(a.sum(0)))
    summed = b.sum(0)
    candidates = order[len(fixed):]
    history = [float(corpus_bleu(summed)) - base]
    for i in candidates:
        if history[-1] <= -tolerance:
            break
        summed = summed - b[i] + broken[i]
        history.append(float(corpus_bleu(summed)) - base)
    k = len(history) - 1
    if tolerance == 0 and k and abs(history[k - 1]) < abs(history[k]):
        k -= 1
    b = b.copy()
    b[candidates[:k]] = broken[candidates[:k]]
    return a, b, base - float(corpus_bleu(b.sum(0)))


def new_lower(a: np.ndarray, b: np.ndarray, margin: float) -> np.ndarray:
    """The gate's bound for each run (rows of ``a``, ``b``: runs × n × 10), jackknife vectorised over runs."""
    n = a.shape[1]
    sums_a, sums_b = a.sum(1), b.sum(1)
    full_a, full_b = corpus_bleu(sums_a), corpus_bleu(sums_b)
    pseudo_a = n * full_a[:, None] - (n - 1) * corpus_bleu(sums_a[:, None, :] - a)
    pseudo_b = n * full_b[:, None] - (n - 1) * corpus_bleu(sums_b[:, None, :] - b)
    d = pseudo_b - pseudo_a
    scale = np.maximum(np.ptp(pseudo_a, axis=1), np.ptp(pseudo_b, axis=1))
    return score_bound_arrays(full_b - full_a, d.std(1, ddof=1), scale, n, margin, ALPHA)["lower"]


def old_lower(a: np.ndarray, b: np.ndarray, margin: float, resamples: int = 500, seed: int = 0) -> np.ndarray:
    """The paired bootstrap's lower bound (the gate before), for each run."""
    runs, n, _ = a.shape
    out = np.empty(runs)
    for r in range(runs):
        counts = resample_counts(n, resamples, seed + r)
        replicates = corpus_bleu(counts @ b[r]) - corpus_bleu(counts @ a[r])
        out[r] = bootstrap_margin_arrays(replicates, margin, ALPHA)["lower"]
    return out


def draw(a: np.ndarray, b: np.ndarray, n: int, runs: int = RUNS, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    index = np.random.default_rng(seed + n).integers(0, len(a), (runs, n))
    return a[index], b[index]


def test_the_simulation_scores_bleu_as_sacrebleu_does() -> None:
    a, b, _ = population(1.0, fixes=True)
    rows = np.random.default_rng(0).integers(0, POPULATION, (20, 7))
    edge = [np.array([5, 9, 0, 0, 0, 0, 5, 4, 3, 2]), np.array([5, 9, 3, 1, 0, 0, 5, 4, 3, 2])]  # no match; BP, smoothing
    for summed in [a[r].sum(0) for r in rows] + [b[r].sum(0) for r in rows] + edge:
        assert corpus_bleu(summed) == pytest.approx(corpus_bleu_from_stats(summed), rel=1e-12, abs=1e-12)


def test_the_populations_sit_exactly_at_the_boundary() -> None:
    for tolerance in TOLERANCES:
        for fixes in (False, True):
            a, b, margin = population(tolerance, fixes)
            assert margin == pytest.approx(tolerance, abs=0.02)
            assert float(corpus_bleu(b.sum(0)) - corpus_bleu(a.sum(0))) == pytest.approx(-margin, abs=1e-12)
            assert 0 < np.mean(np.any(a != b, axis=1)) < 0.2  # most sentences unchanged


@pytest.mark.parametrize("fixes", [False, True], ids=["breaks only", "breaks and fixes"])
@pytest.mark.parametrize("tolerance", TOLERANCES)
def test_the_corpus_bound_holds_its_size_at_the_boundary(tolerance: float, fixes: bool) -> None:
    a, b, margin = population(tolerance, fixes)
    rates = [float(np.mean(new_lower(*draw(a, b, n), margin) > -margin)) for n in SIZES]
    assert max(rates) <= LIMIT, rates


def test_the_gate_entry_computes_the_simulated_bound() -> None:
    """The vectorised simulation above is the gate's ``corpus_margin_test`` (sacrebleu's scores, one run at a time)."""
    a, b, margin = population(1.0, fixes=True)
    runs_a, runs_b = draw(a, b, 40, runs=3)
    corpus = info("bleu").corpus
    assert corpus is not None
    lowers = new_lower(runs_a, runs_b, margin)
    for x, y, lower in zip(runs_a, runs_b, lowers, strict=True):
        test = corpus_margin_test(lambda c, x=x: corpus.resampled_scores(x, c),
                                  lambda c, y=y: corpus.resampled_scores(y, c), 40, margin=margin, alpha=ALPHA)
        assert test.lower == pytest.approx(lower, rel=1e-9, abs=1e-9)
        assert (test.lower > -margin) == (test.p_noninferior < ALPHA)


def test_the_gate_no_longer_passes_a_broken_corpus_it_did_not_see_the_breaks_of() -> None:
    """Breaks only, 1-point tolerance, 30 sentences: the paired bootstrap passed about 45 % of these eval sets."""
    a, b, margin = population(1.0, fixes=False)
    corpus = info("bleu").corpus
    assert corpus is not None
    runs_a, runs_b = draw(a, b, 30, runs=200, seed=5)
    passed = 0
    for x, y in zip(runs_a, runs_b, strict=True):
        test = corpus_margin_test(lambda c, x=x: corpus.resampled_scores(x, c),
                                  lambda c, y=y: corpus.resampled_scores(y, c), 30, margin=margin, alpha=ALPHA)
        passed += test.lower > -margin
    assert passed / 200 <= ALPHA + 2.5 * math.sqrt(ALPHA * (1 - ALPHA) / 200)


def test_power_at_a_true_difference_of_zero() -> None:
    """An unchanged candidate passes once the eval set can bound one sentence's worst change (z² w / (n + z²) < m);
    with changes that cancel, the bound keeps at least 85 % of the old bootstrap's power where that held its size."""
    a, _, _ = population(2.0, fixes=False)
    for n, tolerance in ((200, 2.0), (500, 2.0), (500, 1.0), (500, 0.5)):
        same = draw(a, a, n, runs=200)
        assert np.mean(new_lower(*same, tolerance) > -tolerance) >= 0.95
    assert np.mean(new_lower(*draw(a, a, 30, runs=200), 2.0) > -2.0) == 0.0  # 30 unchanged cannot bound 2 points
    # breaks and fixes that cancel (true Δ within 0.01 of 0), tolerance 2, n 500: there the bootstrap held its size
    a, b, drop = population(0.0, fixes=True)
    assert abs(drop) < 0.01
    old_boundary = population(2.0, fixes=False)
    size = np.mean(old_lower(*draw(*old_boundary[:2], 500, runs=200), old_boundary[2]) > -old_boundary[2])
    assert size <= ALPHA + 2.5 * math.sqrt(ALPHA * (1 - ALPHA) / 200)
    runs = draw(a, b, 500, runs=200, seed=9)
    new_power = float(np.mean(new_lower(*runs, 2.0) > -2.0))
    old_power = float(np.mean(old_lower(*runs, 2.0) > -2.0))
    assert new_power >= 0.85 * old_power and new_power >= 0.85, (new_power, old_power)


def test_a_clustered_suite_leaves_out_whole_clusters() -> None:
    """30 documents of 3 sentences that break together: wider bound and a design effect > 1 than the same data unclustered."""
    a, _, _ = population(1.0, fixes=False)
    rng = np.random.default_rng(4)
    documents = rng.integers(0, POPULATION, 30)
    stats_a = a[np.repeat(documents, 3)]
    broken = np.repeat(rng.random(30) < 0.2, 3)
    stats_b = np.where(broken[:, None], _rows(stats_a[:, 0], np.full(90, 0.25)), stats_a)
    corpus = info("bleu").corpus
    assert corpus is not None
    labels = [f"doc-{i // 3}" for i in range(90)]

    def tested(clusters: list[str] | None) -> Any:
        return corpus_margin_test(lambda c: corpus.resampled_scores(stats_a, c),
                                  lambda c: corpus.resampled_scores(stats_b, c), 90, margin=1.0, alpha=ALPHA,
                                  clusters=clusters)

    clustered, independent = tested(labels), tested(None)
    assert clustered.difference == independent.difference < 0
    assert clustered.clusters == 30 and clustered.design_effect > 1.5
    assert independent.clusters == 0 and math.isnan(independent.design_effect)
    assert clustered.difference - clustered.lower > independent.difference - independent.lower
    one_each = tested([f"s-{i}" for i in range(90)])  # one sentence per cluster: the plain jackknife
    assert one_each.lower == pytest.approx(independent.lower, rel=1e-12)
    assert one_each.design_effect == pytest.approx(1.0, rel=1e-12)

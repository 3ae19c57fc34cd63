"""Paired tests, bootstrap, permutation test and Holm equal scipy or a brute-force reference."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy import stats

from harness.stats import (
    holm,
    mcnemar,
    paired_bootstrap,
    paired_bootstrap_corpus,
    paired_ttest,
    permutation_test,
    resample_counts,
    wilcoxon,
)

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
ALTERNATIVE = st.sampled_from(["two-sided", "greater", "less"])
score = st.floats(-100, 100, allow_nan=False, allow_infinity=False)
# Scores on a coarse grid produce ties and zero differences, the cases tests handle specially.
grid_score = st.integers(0, 10).map(lambda k: k / 10)
mixed_score = st.one_of(score, grid_score)


@st.composite
def pairs(draw, min_size=2, max_size=40, values=mixed_score):
    n = draw(st.integers(min_size, max_size))
    a = draw(st.lists(values, min_size=n, max_size=n))
    b = draw(st.lists(values, min_size=n, max_size=n))
    return np.array(a), np.array(b)


def close(x, y, tol=1e-9):
    return (math.isnan(x) and math.isnan(y)) or x == pytest.approx(y, rel=tol, abs=tol)


@SETTINGS
@given(data=pairs(), alternative=ALTERNATIVE)
def test_paired_ttest_equals_scipy(data, alternative):
    a, b = data
    ours = paired_ttest(a, b, alternative=alternative)
    if np.all(a == b):
        assert (ours.statistic, ours.p_value) == (0.0, 1.0) and "no difference" in ours.note
        return
    theirs = stats.ttest_rel(b, a, alternative=alternative)
    assert close(ours.statistic, float(theirs.statistic))
    assert close(ours.p_value, float(theirs.pvalue))
    assert ours.n == len(a) and ours.alternative == alternative


@SETTINGS
@given(data=pairs(values=grid_score), alternative=ALTERNATIVE)
def test_paired_ttest_matches_the_textbook_formula(data, alternative):
    a, b = data
    d = b - a
    assume(np.std(d) > 1e-9)
    t = d.mean() / (d.std(ddof=1) / math.sqrt(len(d)))
    df = len(d) - 1
    expected = {"two-sided": 2 * stats.t.sf(abs(t), df), "greater": stats.t.sf(t, df),
                "less": stats.t.cdf(t, df)}[alternative]
    result = paired_ttest(a, b, alternative=alternative)
    assert result.statistic == pytest.approx(t, rel=1e-9)
    assert result.p_value == pytest.approx(expected, rel=1e-7, abs=1e-12)


@pytest.mark.filterwarnings("ignore:Precision loss occurred")  # scipy's, constant differences
def test_ttest_edge_cases():
    same = paired_ttest([0.2, 0.4, 0.9], [0.2, 0.4, 0.9])
    assert same.p_value == 1.0 and same.defined
    single = paired_ttest([0.1], [0.5])
    assert math.isnan(single.p_value) and not single.defined and "at least 2" in single.note
    assert paired_ttest([0.3], [0.3]).p_value == 1.0
    shifted = paired_ttest([1, 2, 3], [2, 3, 4], alternative="greater")
    assert shifted.p_value == 0.0 and shifted.statistic == math.inf
    assert "every paired difference equals 1: zero variance" in shifted.note
    assert paired_ttest([1, 2, 3], [2, 3, 4], alternative="less").p_value == 1.0
    with pytest.raises(ValueError, match="a has 3, b has 2"):
        paired_ttest([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="empty"):
        paired_ttest([], [])
    with pytest.raises(ValueError, match=r"b\[1\] is nan"):
        paired_ttest([1, 2], [1, float("nan")])
    with pytest.raises(ValueError, match="alternative must be one of"):
        paired_ttest([1, 2], [1, 2], alternative="smaller")


@settings(SETTINGS, max_examples=12)
@given(data=pairs(min_size=1, max_size=25), alternative=ALTERNATIVE,
       zero_method=st.sampled_from(["wilcox", "pratt", "zsplit"]))
def test_wilcoxon_equals_scipy(data, alternative, zero_method):
    a, b = data
    ours = wilcoxon(a, b, alternative=alternative, zero_method=zero_method)
    if np.all(a == b):
        assert ours.p_value == 1.0 and "no difference" in ours.note
        return
    theirs = stats.wilcoxon(b, a, alternative=alternative, zero_method=zero_method)
    assert close(ours.statistic, float(theirs.statistic))
    assert close(ours.p_value, float(theirs.pvalue))


def test_direction_is_b_minus_a():
    a = np.linspace(0.0, 1.0, 30)
    b = a + 0.1 + np.sin(np.arange(30)) * 0.01
    for test in (paired_ttest, wilcoxon, permutation_test):
        assert test(a, b, alternative="greater").p_value < 0.01
        assert test(a, b, alternative="less").p_value > 0.99
    assert paired_ttest(a, b).statistic > 0


def binary_pairs(fixes, breaks, both_right=3, both_wrong=2):
    a = [0] * fixes + [1] * breaks + [1] * both_right + [0] * both_wrong
    b = [1] * fixes + [0] * breaks + [1] * both_right + [0] * both_wrong
    return np.array(a), np.array(b)


@SETTINGS
@given(fixes=st.integers(0, 60), breaks=st.integers(0, 60), alternative=ALTERNATIVE,
       seed=st.integers(0, 1000))
def test_mcnemar_equals_binomial_or_chi_square(fixes, breaks, alternative, seed):
    a, b = binary_pairs(fixes, breaks)
    order = np.random.default_rng(seed).permutation(len(a))
    result = mcnemar(a[order], b[order], alternative=alternative)
    d = fixes + breaks
    assert result.counts == {"b_fixes": fixes, "b_breaks": breaks, "discordant": d}
    if d == 0:
        assert result.p_value == 1.0 and "no discordant pairs" in result.note
    elif d < 25:
        expected = stats.binomtest(fixes, d, 0.5, alternative=alternative).pvalue
        assert result.method.startswith("McNemar exact")
        assert result.p_value == pytest.approx(expected, rel=1e-12)
    else:
        assert "chi-square" in result.method
        chi = max(abs(fixes - breaks) - 1, 0) ** 2 / d
        if alternative == "two-sided":
            assert result.statistic == pytest.approx(chi, rel=1e-12)
            assert result.p_value == pytest.approx(stats.chi2.sf(chi, 1), rel=1e-9)
        else:
            z = (fixes - breaks + (-1 if alternative == "greater" else 1)) / math.sqrt(d)
            expected = stats.norm.sf(z) if alternative == "greater" else stats.norm.cdf(z)
            assert result.p_value == pytest.approx(expected, rel=1e-9)
            # One-sided in the observed direction is half the two-sided chi-square p-value.
            if (alternative == "greater") == (fixes > breaks) and abs(fixes - breaks) >= 1:
                assert result.p_value == pytest.approx(stats.chi2.sf(chi, 1) / 2, rel=1e-9)


def test_mcnemar_threshold_and_input_checks():
    assert mcnemar(*binary_pairs(20, 4)).method.startswith("McNemar exact")
    assert "chi-square" in mcnemar(*binary_pairs(20, 5)).method
    assert mcnemar(*binary_pairs(20, 5), exact_below=100).method.startswith("McNemar exact")
    with pytest.raises(ValueError, match=r"b_correct\[0\] is 0.5"):
        mcnemar([1, 0], [0.5, 1])
    with pytest.raises(ValueError, match="a_correct has 2, b_correct has 1"):
        mcnemar([1, 0], [1])


@SETTINGS
@given(data=pairs(max_size=60), seed=st.integers(0, 2**32 - 1),
       confidence=st.sampled_from([0.9, 0.95, 0.99]))
def test_paired_bootstrap_equals_scipy(data, seed, confidence):
    a, b = data
    if np.unique(b - a).shape[0] <= 16:  # few distinct differences: resampled as counts (test below)
        return
    result = paired_bootstrap(a, b, n_resamples=500, seed=seed, confidence=confidence)
    theirs = stats.bootstrap((b - a,), np.mean, n_resamples=500, method="percentile",
                             confidence_level=confidence, rng=np.random.default_rng(seed))
    assert close(result.low, float(theirs.confidence_interval.low))
    assert close(result.high, float(theirs.confidence_interval.high))
    assert result.estimate == pytest.approx(np.mean(b - a))
    assert result.low <= result.high


@pytest.mark.parametrize("n", [40, 300, 5000])
def test_bootstrap_of_0_1_scores_by_counts_matches_scipys_within_resampling_error(n):
    """0/1 differences (-1, 0, 1) are resampled as multinomial counts: the same bootstrap distribution as
    scipy's resampling of examples, so the bounds agree within the resampling error of 20,000 draws."""
    rng = np.random.default_rng(n)
    a = (rng.random(n) < 0.7).astype(float)
    b = np.where(rng.random(n) < 0.2, 1.0 - a, a)
    result = paired_bootstrap(a, b, n_resamples=20_000, seed=1)
    theirs = stats.bootstrap((b - a,), np.mean, n_resamples=20_000, method="percentile", vectorized=True,
                             rng=np.random.default_rng(2)).confidence_interval
    step = 1.0 / n  # the bootstrap mean moves on a grid of 1/n
    width = theirs.high - theirs.low
    assert abs(result.low - theirs.low) <= max(2 * step, 0.03 * width)
    assert abs(result.high - theirs.high) <= max(2 * step, 0.03 * width)
    assert "distinct differences" in result.note


@SETTINGS
@given(data=pairs(max_size=30), seed=st.integers(0, 2**32 - 1))
def test_corpus_bootstrap_of_means_equals_scipy(data, seed):
    """Re-adding per-example numbers over resample counts reproduces scipy's bootstrap."""
    a, b = data
    n = len(a)

    def mean_of(values):
        return lambda counts: counts @ values / n

    result = paired_bootstrap_corpus(mean_of(a), mean_of(b), n, n_resamples=300, seed=seed)
    theirs = stats.bootstrap((b - a,), np.mean, n_resamples=300, method="percentile",
                             rng=np.random.default_rng(seed))
    assert close(result.low, float(theirs.confidence_interval.low), tol=1e-9)
    assert close(result.high, float(theirs.confidence_interval.high), tol=1e-9)


def test_resample_counts_are_the_generators_draws_in_any_batch_size():
    counts = resample_counts(7, 2000, seed=3)
    draws = np.random.default_rng(3).integers(0, 7, (2000, 7))
    expected = np.stack([np.bincount(row, minlength=7) for row in draws])
    assert np.array_equal(counts, expected)
    assert np.all(counts.sum(axis=1) == 7)


def test_bootstrap_edge_cases():
    single = paired_bootstrap([0.1], [0.3])
    assert math.isnan(single.low) and "at least 2" in single.note
    assert single.estimate == pytest.approx(0.2)
    flat = paired_bootstrap([0.5, 0.5, 0.5], [0.5, 0.5, 0.5])
    assert (flat.low, flat.high) == (0.0, 0.0)
    seeded = paired_bootstrap([0.1, 0.5, 0.9, 0.3], [0.2, 0.4, 1.0, 0.8], seed=5)
    again = paired_bootstrap([0.1, 0.5, 0.9, 0.3], [0.2, 0.4, 1.0, 0.8], seed=5)
    assert seeded == again


def brute_force_permutation_p(a, b, alternative):
    """Exact paired randomisation: every assignment of signs to the differences."""
    d = b - a
    observed = d.mean()
    null = np.array([np.mean(d * np.array(signs))
                     for signs in itertools.product([1, -1], repeat=len(d))])
    greater = np.mean(null >= observed)
    less = np.mean(null <= observed)
    return {"greater": greater, "less": less,
            "two-sided": min(1.0, 2 * min(greater, less))}[alternative]


@SETTINGS
@given(data=pairs(min_size=1, max_size=9, values=st.integers(0, 10)), alternative=ALTERNATIVE)
def test_permutation_test_exact_for_small_n(data, alternative):
    # Integer scores keep every sign assignment's mean exact, so ties are real ties.
    a, b = data
    result = permutation_test(a, b, alternative=alternative, n_resamples=10_000)
    if np.all(a == b):
        assert result.p_value == 1.0
        return
    if len(a) == 1:
        assert not result.defined and "at least 2 pairs" in result.note
        return
    assert result.p_value == pytest.approx(brute_force_permutation_p(a, b, alternative),
                                           abs=1e-9)


@settings(max_examples=15, deadline=None)
@given(data=pairs(min_size=20, max_size=60), alternative=ALTERNATIVE, seed=st.integers(0, 99))
def test_permutation_test_equals_scipy_randomised(data, alternative, seed):
    a, b = data
    assume(not np.all(a == b))
    result = permutation_test(a, b, alternative=alternative, n_resamples=999, seed=seed)
    theirs = stats.permutation_test(
        (b, a), lambda x, y, axis: np.mean(x - y, axis=axis), permutation_type="samples",
        vectorized=True, n_resamples=999, alternative=alternative,
        rng=np.random.default_rng(seed))
    assert result.p_value == pytest.approx(float(theirs.pvalue), abs=1e-12)


def brute_force_holm(p_values):
    """Adjusted p_i = the smallest alpha at which Holm's step-down procedure rejects H_i."""
    m = len(p_values)
    candidates = sorted({min(1.0, (m - j) * p) for j in range(m) for p in p_values} | {1.0})
    adjusted = [1.0] * m
    for alpha in reversed(candidates):
        order = sorted(range(m), key=lambda i: p_values[i])
        rejected = set()
        for step, i in enumerate(order):
            if min(1.0, (m - step) * p_values[i]) <= alpha:
                rejected.add(i)
            else:
                break
        for i in rejected:
            adjusted[i] = alpha
    return adjusted


@SETTINGS
@given(p_values=st.lists(st.one_of(st.floats(0, 1), st.sampled_from([0.01, 0.02, 0.5])),
                         max_size=12))
def test_holm_equals_brute_force_step_down(p_values):
    assert holm(p_values) == pytest.approx(brute_force_holm(p_values), abs=1e-12)


def test_holm_known_values_and_errors():
    assert holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert holm([]) == []
    with pytest.raises(ValueError, match=r"p_values\[1\] is nan"):
        holm([0.1, float("nan")])

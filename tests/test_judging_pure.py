"""The pure part of judging: reading verdicts, the swap rule, G-Eval's weighting, bias figures."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.metrics.judging import (
    Scale,
    expected_rating,
    length_bias,
    parse_pairwise,
    parse_rating,
    self_consistency,
    swap_verdict,
)

verdicts = st.sampled_from(["A", "B", "tie", None])


@given(verdicts, verdicts)
def test_a_win_counts_only_when_it_survives_the_swap(first, second):
    score, flipped = swap_verdict(first, second)
    if first is None or second is None:
        assert score == 0.0 and flipped is None
        return
    assert score in (-1.0, 0.0, 1.0)
    assert (score == 1.0) == ((first, second) == ("A", "B"))
    assert (score == -1.0) == ((first, second) == ("B", "A"))
    assert flipped == ((first, second) not in (("A", "B"), ("B", "A"), ("tie", "tie")))
    # the other side of the pair sees the opposite score
    assert swap_verdict(second, first)[0] == -score


def test_a_judge_preferring_one_position_never_scores_and_always_flips():
    assert swap_verdict("A", "A") == (0.0, True)
    assert swap_verdict("B", "B") == (0.0, True)


@pytest.mark.parametrize(("text", "verdict"), [("A", "A"), ("b.", "B"), ("[[A]]", "A"), (" Tie - equal", "tie"),
                                               ("Answer A is better", None), ("", None), ("AB", None)])
def test_pairwise_replies_are_read_from_their_start(text, verdict):
    assert parse_pairwise(text) == verdict


@pytest.mark.parametrize(("text", "scale", "rating"), [
    ("4", Scale(1, 5), 4.0), ("5/5", Scale(1, 5), 5.0), ("6", Scale(1, 5), None), ("3.5", Scale(1, 5), None),
    ("great", Scale(1, 5), None), ("PASS", Scale(pass_fail=True), 1.0), ("fail: too short", Scale(pass_fail=True), 0.0),
    ("maybe", Scale(pass_fail=True), None),
])
def test_ratings_must_be_on_the_scale(text, scale, rating):
    assert parse_rating(text, scale) == rating


def test_geval_expected_rating_weights_the_scale_tokens_by_probability():
    """G-Eval (Liu et al. 2023, eq. 1): score = sum_i p(s_i) * s_i, over the scale's tokens only."""
    top = [{"token": "4", "logprob": math.log(0.6)}, {"token": "5", "logprob": math.log(0.2)},
           {"token": "3", "logprob": math.log(0.1)}, {"token": "The", "logprob": math.log(0.1)}]
    assert expected_rating(top, Scale(1, 5)) == pytest.approx((4 * 0.6 + 5 * 0.2 + 3 * 0.1) / 0.9)
    assert expected_rating([{"token": "x", "logprob": -0.1}], Scale(1, 5)) is None


def test_length_bias_counts_decided_unequal_pairs_and_correlates_with_scipy():
    from scipy.stats import spearmanr

    verdicts = [1, 1, -1, 0, 1, -1]
    diffs = [3, 2, -4, 5, -1, 0]
    figures = length_bias(verdicts, diffs)
    assert figures["decided_unequal"] == 4 and figures["longer_wins"] == 0.75
    assert figures["correlation"] == pytest.approx(spearmanr(verdicts, diffs).statistic)
    assert length_bias([0, 0, 0], [1, 2, 3])["correlation"] is None


def test_self_consistency_is_the_share_of_items_whose_samples_agree():
    assert self_consistency([[1, 1, 1], [1, 0, 1], [0, 0, 0], [1, 1, 0]]) == 0.5
    assert self_consistency([[1], [0]]) is None


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([-1.0, 0.0, 1.0]), st.sampled_from([-1.0, 0.0, 1.0])), min_size=1,
                max_size=30), st.integers(0, 2**32 - 1))
def test_the_resampled_kappas_are_scikit_learns_on_each_resample(pairs, seed):
    from sklearn.metrics import cohen_kappa_score

    from harness.metrics.agreement import resampled_kappas

    a, b = np.array([x for x, _ in pairs]), np.array([y for _, y in pairs])
    draws = np.random.default_rng(seed).integers(0, len(pairs), size=(20, len(pairs)))
    fast = resampled_kappas(a, b, draws)
    for row, kappa in zip(draws, fast, strict=True):
        if len(set(a[row]) | set(b[row])) < 2:  # one category: undefined
            assert math.isnan(kappa)
        else:
            assert kappa == pytest.approx(cohen_kappa_score(a[row], b[row]), abs=1e-12)

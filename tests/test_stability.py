"""The spread summary behind --ft-repeat (pure)."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.runner.stability import spread

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


def test_spread_of_known_values():
    # mean 3 (the median would be 2); sample variance (2² + 1² + 3²) / 2 = 7 (population: 14/3)
    s = spread([6.0, 1.0, 2.0])
    assert s == {"mean": 3.0, "std": pytest.approx(math.sqrt(7)), "min": 1.0, "max": 6.0}
    assert spread([0.25]) == {"mean": 0.25, "std": 0.0, "min": 0.25, "max": 0.25}


@given(finite, finite)
def test_two_runs_spread_by_half_their_distance_times_root_two(a, b):
    s = spread([a, b])
    assert s["std"] == pytest.approx(abs(a - b) / math.sqrt(2), rel=1e-9, abs=1e-9)
    assert s["mean"] == pytest.approx((a + b) / 2, rel=1e-12, abs=1e-12)
    assert (s["min"], s["max"]) == (min(a, b), max(a, b))


@given(st.lists(finite, min_size=2, max_size=20), finite, st.randoms(use_true_random=False))
def test_shift_moves_the_mean_only_and_order_does_not_matter(values, shift, rng):
    s = spread(values)
    moved = spread([v + shift for v in values])
    assert moved["mean"] == pytest.approx(s["mean"] + shift, rel=1e-9, abs=1e-6)
    assert moved["std"] == pytest.approx(s["std"], rel=1e-6, abs=1e-6)
    shuffled = list(values)
    rng.shuffle(shuffled)
    assert spread(shuffled)["std"] == pytest.approx(s["std"], rel=1e-9, abs=1e-9)
    assert s["min"] <= s["mean"] <= s["max"] or math.isclose(s["min"], s["max"])


def test_identical_runs_have_no_spread():
    assert spread([0.7, 0.7, 0.7])["std"] == 0.0

"""The spread summary behind --ft-repeat (pure)."""

import statistics

from hypothesis import given
from hypothesis import strategies as st

from harness.runner.stability import spread

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@given(st.lists(finite, min_size=1, max_size=20))
def test_spread_matches_statistics(values):
    s = spread(values)
    assert s["min"] == min(values) and s["max"] == max(values)
    assert s["mean"] == statistics.fmean(values)
    assert s["std"] == (statistics.stdev(values) if len(values) > 1 else 0.0)
    assert s["min"] <= s["mean"] + 1e-6 and s["mean"] <= s["max"] + 1e-6


def test_identical_runs_have_no_spread():
    assert spread([0.7, 0.7, 0.7])["std"] == 0.0

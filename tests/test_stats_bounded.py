"""The betting interval for bounded continuous scores: its stated properties and its size at the gate's boundary."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from harness.gate.verdict import mean_test
from harness.stats import margin_test
from harness.stats.bounded import betting_margin_arrays, eb_margin_arrays
from harness.stats.margin import BETTING_METHOD, T_METHOD, margin_arrays

ALPHA = 0.05
RUNS = 1000
LIMIT = ALPHA + 2.5 * math.sqrt(ALPHA * (1 - ALPHA) / RUNS)  # α + 2.5 SE of a pass rate over RUNS runs


def zero_inflated(rng: np.random.Generator, n: int, tolerance: float, *, fixes: bool = False
                  ) -> tuple[np.ndarray, np.ndarray]:
    """ROUGE-like 0–100 scores: most examples unchanged, a share broken by 20–40 points (mean drop = tolerance)."""
    before = rng.uniform(40, 60 if fixes else 100, (RUNS, n))  # gains stay below 100
    rate = tolerance / 30.0
    drop = np.where(rng.random((RUNS, n)) < rate, rng.uniform(20, 40, (RUNS, n)), 0.0)
    gain = np.where(rng.random((RUNS, n)) < rate, rng.uniform(20, 40, (RUNS, n)), 0.0) if fixes else 0.0
    return before, np.clip(before - drop + gain, 0.0, 100.0)


@pytest.mark.parametrize("tolerance", [1.0, 3.0])
def test_betting_interval_holds_its_size_where_the_t_interval_does_not(tolerance: float) -> None:
    rng = np.random.default_rng(23)
    old, new = [], []
    for n in (30, 50, 100, 200, 500):
        before, after = zero_inflated(rng, n, tolerance)
        old.append(float(np.mean(margin_arrays(before, after, tolerance, ALPHA)["p_noninferior"] < ALPHA)))
        new.append(float(np.mean(margin_arrays(before, after, tolerance, ALPHA, (0.0, 100.0))["lower"] > -tolerance)))
    assert max(new) <= LIMIT, new
    assert old[0] > LIMIT, old  # the paired t interval passes far more than α at n = 30


def test_betting_interval_holds_its_size_on_heavy_tails() -> None:
    rng = np.random.default_rng(5)
    tolerance = 2.0
    for n in (30, 200):
        d = np.clip(-tolerance + 3.0 * rng.standard_t(2.5, (RUNS, n)), -tolerance - 50, -tolerance + 50)
        assert np.mean(betting_margin_arrays(d, tolerance, ALPHA, 100.0)["lower"] > -tolerance) <= LIMIT


def test_an_unchanged_candidate_passes_once_the_eval_set_is_large_enough() -> None:
    rng = np.random.default_rng(7)
    before, after = zero_inflated(rng, 500, 5.0, fixes=True)  # true Δ ≈ 0, 1/6 of the examples changed
    power = np.mean(margin_arrays(before, after, 5.0, ALPHA, (0.0, 100.0))["lower"] > -5.0)
    assert power > 0.8
    unchanged = np.full(500, 70.0)
    assert margin_test(unchanged, unchanged, margin=3.0, bounds=(0.0, 100.0)).lower > -3.0
    assert margin_test(unchanged[:30], unchanged[:30], margin=3.0, bounds=(0.0, 100.0)).lower < -3.0


def test_the_lower_bound_covers_every_bounded_distribution_at_small_n() -> None:
    """Theorem 3 of Waudby-Smith & Ramdas: P(mean < lower bound) <= α for any law on [0, 1], at any n."""
    rng = np.random.default_rng(11)
    for n, draw in ((20, lambda: (rng.random((RUNS, 20)) < 0.03).astype(float)),        # rare 1s
                    (40, lambda: rng.beta(0.3, 3.0, (RUNS, 40))),                        # skewed
                    (60, lambda: np.where(rng.random((RUNS, 60)) < 0.5, 0.0, 1.0))):     # two points
        x = draw()
        mean = {20: 0.03, 40: 0.3 / 3.3, 60: 0.5}[n]
        bounds = betting_margin_arrays(2 * x - 1, 0.0, ALPHA, 1.0)  # X mapped onto [-1, 1]
        assert np.mean((bounds["lower"] + 1) / 2 > mean) <= LIMIT
        assert np.mean((bounds["upper"] + 1) / 2 < mean) <= LIMIT


def test_empirical_bernstein_width_is_sharp_at_large_n() -> None:
    """Section 3 of the paper: with the fixed-n bets, sqrt(n) × width → σ sqrt(2 log(1/α)) (one-sided)."""
    rng = np.random.default_rng(3)
    n = 40_000
    d = rng.uniform(-0.2, 0.2, (1, n))
    width = float(d.mean() - eb_margin_arrays(d, 0.0, ALPHA, 1.0)["lower"][0])
    sigma = 0.4 / math.sqrt(12)
    assert math.sqrt(n) * width == pytest.approx(sigma * math.sqrt(2 * math.log(1 / ALPHA)), rel=0.1)
    betting = float(d.mean() - betting_margin_arrays(d, 0.0, ALPHA, 1.0)["lower"][0])
    assert betting <= width * 1.01


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=2, max_size=60),
       st.floats(0.0, 0.3), st.sampled_from([0.05, 0.1]))
def test_bounds_and_p_values_agree_and_the_scale_carries_through(pairs: list[tuple[float, float]], margin: float,
                                                                 alpha: float) -> None:
    a, b = np.array(pairs).T
    assume(not set(a.tolist()) | set(b.tolist()) <= {0.0, 1.0})  # 0/1 scores go to Tango's test
    unit = margin_test(a, b, margin=margin, alpha=alpha, bounds=(0.0, 1.0))
    assert unit.method == BETTING_METHOD
    assert -1.0 <= unit.lower <= unit.difference + 1e-9 and unit.difference - 1e-9 <= unit.upper <= 1.0
    if abs(unit.lower + margin) > 1e-6:
        assert (unit.lower > -margin) == (unit.p_noninferior < alpha)
    if abs(unit.upper + margin) > 1e-6:
        assert (unit.upper < -margin) == (unit.p_inferior < alpha)
    percent = margin_test(100 * a, 100 * b, margin=100 * margin, alpha=alpha, bounds=(0.0, 100.0))
    assert percent.lower == pytest.approx(100 * unit.lower, abs=1e-6)
    assert percent.p_noninferior == pytest.approx(unit.p_noninferior, rel=1e-6, abs=1e-12)


def test_the_gate_reads_each_metrics_scale_from_the_registry() -> None:
    rng = np.random.default_rng(1)
    a = rng.uniform(0.3, 0.9, 80)
    b = np.clip(a - np.where(rng.random(80) < 0.1, 0.3, 0.0), 0, 1)
    semscore = mean_test("semscore", a, b, margin=0.02, alpha=ALPHA)
    rouge = mean_test("rougeL", 100 * a, 100 * b, margin=2.0, alpha=ALPHA)
    assert semscore.method == rouge.method == BETTING_METHOD
    assert rouge.lower == pytest.approx(100 * semscore.lower, abs=1e-6)
    assert mean_test("scorer:brevity", a - 0.5, b - 0.5, margin=0.02, alpha=ALPHA).note.endswith("range of 2")
    assert margin_test(a * 3, b * 3, margin=0.1, bounds=(0.0, 1.0)).method == T_METHOD  # outside: unknown range

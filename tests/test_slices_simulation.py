"""Seeded simulations (1,000 runs, vectorised) of the per-slice gate's error rates.

They run the gate's own pieces: the margin test per slice
(:func:`harness.stats.margin_arrays`, what ``margin_test`` computes: Tango's for these 0/1 scores), the family-wide
correction and verdicts (:func:`harness.gate.slices.family_verdicts`) and the reported slice
MDE (:func:`harness.gate.slices.detectable_drop`). One check ties them to the record the gate
writes for a single run.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.gate import Baseline, GateConfig, check
from harness.gate.baseline import entry_from_result
from harness.gate.slices import detectable_drop, family_verdicts
from harness.results import EvalResult
from harness.stats import margin_arrays

RUNS = 1000
ALPHA = 0.05
SE = math.sqrt(ALPHA * (1 - ALPHA) / RUNS)


def _slice_tests(base: np.ndarray, current: np.ndarray, groups: list[np.ndarray],
                 tolerance: float) -> dict[str, np.ndarray]:
    """(runs, k) arrays of each slice's margin-test statistics from (runs, n) paired scores."""
    tests = [margin_arrays(base[:, g], current[:, g], tolerance, ALPHA) for g in groups]
    return {key: np.stack([t[key] for t in tests], axis=-1) for key in tests[0]}


def _verdicts(t: dict[str, np.ndarray], tolerance: float, method: str) -> np.ndarray:
    verdicts, _ = family_verdicts(difference=t["mean"], allowed_drop=np.full(t["mean"].shape, tolerance),
                                  p_noninferior=t["p_noninferior"], p_inferior=t["p_inferior"],
                                  p_superior=t["p_superior"], alpha=ALPHA, method=method)
    return verdicts


def _overlapping_slices(n: int) -> list[np.ndarray]:
    """Two label slices and three length buckets: five overlapping slices, as a suite declares them."""
    index = np.arange(n)
    return [index[index % 2 == 0], index[index % 2 == 1], index[: n // 3], index[n // 3: 2 * n // 3],
            index[2 * n // 3:]]


@pytest.mark.parametrize("method", ["holm", "bh"])
@pytest.mark.parametrize("tolerance", [0.0, 0.03])
def test_family_wise_false_slice_regression_rate_under_a_a(method, tolerance):
    rng = np.random.default_rng(20260101)
    n = 300
    base = (rng.random((RUNS, n)) < 0.8).astype(float)
    rerun = (rng.random((RUNS, n)) < 0.8).astype(float)  # an unchanged model: same accuracy, new draws
    flip = rng.random((RUNS, n)) < 0.3
    current = np.where(flip, rerun, base)
    verdicts = _verdicts(_slice_tests(base, current, _overlapping_slices(n), tolerance), tolerance, method)
    any_regressed = (verdicts == "regressed").any(axis=-1)
    rate = float(any_regressed.mean())
    print(f"A/A family-wise false slice-regression rate ({method}, tolerance {tolerance}): {rate:.3f}")
    assert rate <= ALPHA + 2 * SE


def _injected_drop(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Baseline 0.80 everywhere; current 15 points lower on the first 20 % and 6 points higher elsewhere."""
    base = (rng.random((RUNS, n)) < 0.8).astype(float)
    u = rng.random((RUNS, n))
    in_slice = np.arange(n) < n // 5
    lose = in_slice & (base == 1) & (u < 0.15 / 0.8)     # 0.80 -> 0.65
    gain = ~in_slice & (base == 0) & (u < 0.06 / 0.2)    # 0.80 -> 0.86
    current = np.where(lose, 0.0, np.where(gain, 1.0, base))
    return base, current


def test_a_fifteen_point_drop_on_a_fifth_of_the_data_is_found_where_the_reported_mde_allows():
    rng = np.random.default_rng(7)
    n, tolerance = 500, 0.02
    base, current = _injected_drop(rng, n)
    d = current - base
    index = np.arange(n)
    groups = [index[: n // 5], *np.array_split(index[n // 5:], 4)]  # the dropped 20 % and four others
    k = len(groups)
    t = _slice_tests(base, current, groups, tolerance)
    sd = d[:, groups[0]].std(axis=-1, ddof=1)
    discordance = (d[:, groups[0]] != 0).mean(axis=-1)
    reported = np.array([detectable_drop(s, len(groups[0]), allowed=tolerance, alpha=ALPHA, k=k, discordance=q)
                         for s, q in zip(sd, discordance, strict=True)])
    detected = float((_verdicts(t, tolerance, "holm")[:, 0] == "regressed").mean())
    overall = d.mean(axis=-1)
    print(f"n = {n}, slice n = {len(groups[0])}: median reported MDE {np.median(reported):.3f}, "
          f"detected {detected:.3f}, overall Δ mean {overall.mean():+.3f}")
    assert np.median(reported) <= 0.15
    assert (overall > 0).mean() > 0.9  # the overall mean rises: the regression is hidden
    assert detected >= 0.80


def test_the_gate_record_agrees_with_the_vectorised_core():
    rng = np.random.default_rng(3)
    base, current = _injected_drop(rng, 500)
    groups = {"part": {"dropped": list(range(100)), "rest": list(range(100, 500))}}

    def result(scores: np.ndarray) -> EvalResult:
        ids = [f"e{i}" for i in range(500)]
        members = {f: {s: [ids[i] for i in idx] for s, idx in g.items()} for f, g in groups.items()}
        return EvalResult("s", "c", "lora", "f", "classification", "eval", "x", ids, [""] * 500, [""] * 500,
                          [""] * 500, {"accuracy": float(scores.mean())}, {"correct": scores.tolist()},
                          slices=members)

    config = GateConfig.from_mapping({"metrics": {"accuracy": {"tolerance": 0.02}}})
    before, after = result(base[0]), result(current[0])
    [record] = check(after, Baseline(entries={("s", "c"): entry_from_result(before, versions={}, date="d")}), config)
    t = _slice_tests(base[:1], current[:1], [np.arange(100), np.arange(100, 500)], 0.02)
    expected = _verdicts(t, 0.02, "holm")[0]
    assert [s["verdict"] for s in record.details["slices"]] == list(expected)
    assert record.details["slices"][0]["delta"] == pytest.approx(float(t["mean"][0, 0]))
    assert record.details["slices"][0]["delta"] == pytest.approx(float(np.mean(current[0, :100] - base[0, :100])))
    assert record.details["slices"][1]["delta"] == pytest.approx(float(np.mean(current[0, 100:] - base[0, 100:])))

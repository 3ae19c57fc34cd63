"""Benchmark: statistics at scale. ``compare()`` on 100,000 paired examples (0/1 and continuous scores)
beside the 2,000-resample percentile bootstrap it used to run, and the gate (overall, 5 slice families,
flips) plus the reports for a 10,000-example suite with 5 candidates and 2 gated metrics.

    python -m bench.stats [n]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from harness.jsonio import strict_dumps

CANDIDATES = ("base", "zeroshot", "fewshot", "lora", "full")


def _timed(record: dict[str, float], name: str, call: Any) -> Any:
    began = time.perf_counter()
    value = call()
    record[name] = round(time.perf_counter() - began, 4)
    return value


def _compare_at_scale(n: int) -> dict[str, float]:
    from scipy import stats

    from harness.stats import compare, mcnemar, paired_ttest

    rng = np.random.default_rng(0)
    a01 = (rng.random(n) < 0.8).astype(float)
    b01 = np.where(rng.random(n) < 0.05, 1.0 - a01, a01)
    a = rng.uniform(10, 60, n)
    b = np.where(rng.random(n) < 0.1, a - rng.uniform(0, 30, n), a)
    compare(a01[:100], b01[:100])  # imports outside the timings
    t: dict[str, float] = {}
    new_binary = _timed(t, "compare_binary_s", lambda: compare(a01, b01))
    new_continuous = _timed(t, "compare_continuous_s", lambda: compare(a, b))

    def before(x: np.ndarray, y: np.ndarray, test: Any) -> tuple[float, float]:
        """What compare() ran before: the test, then scipy's percentile bootstrap of the mean difference."""
        test(x, y)
        boot = stats.bootstrap((y - x,), np.mean, n_resamples=2000, batch=max(1, 4_000_000 // len(x)),
                               vectorized=True, method="percentile", rng=np.random.default_rng(0))
        return (float(boot.confidence_interval.low), float(boot.confidence_interval.high))

    old_binary = _timed(t, "bootstrap_binary_s", lambda: before(a01, b01, mcnemar))
    old_continuous = _timed(t, "bootstrap_continuous_s", lambda: before(a, b, paired_ttest))
    t["speedup_binary"] = round(t["bootstrap_binary_s"] / t["compare_binary_s"], 1)
    t["speedup_continuous"] = round(t["bootstrap_continuous_s"] / t["compare_continuous_s"], 1)
    t["ci_shift_binary_over_width"] = round(max(abs(x - y) for x, y in zip(new_binary.ci, old_binary, strict=True))
                                            / (old_binary[1] - old_binary[0]), 4)
    t["ci_shift_continuous_over_width"] = round(
        max(abs(x - y) for x, y in zip(new_continuous.ci, old_continuous, strict=True))
        / (old_continuous[1] - old_continuous[0]), 4)
    return t


def _suite(n: int) -> tuple[list[Any], list[Any]]:
    """(current, baseline) results of 5 candidates on n examples: accuracy (0/1) and ROUGE-L, 5 slice families."""
    from harness.results import EvalResult

    rng = np.random.default_rng(1)
    ids = [f"ex-{i:05d}" for i in range(n)]
    index = np.arange(n)
    families = {"label": 2, "length": 3, "topic": 10, "source": 4, "difficulty": 5}
    slices = {family: {f"{family}-{j}": [ids[i] for i in index[index % k == j]] for j in range(k)}
              for family, k in families.items()}
    current, baseline = [], []
    for number, name in enumerate(CANDIDATES):
        correct = (rng.random(n) < 0.6 + 0.05 * number).astype(float)
        rouge = rng.uniform(10, 70, n)
        changed = rng.random(n) < 0.05
        after_correct = np.where(changed, 1.0 - correct, correct)
        after_rouge = np.where(changed, np.clip(rouge + rng.normal(0, 15, n), 0, 100), rouge)
        for scores, rouges, into in ((correct, rouge, baseline), (after_correct, after_rouge, current)):
            into.append(EvalResult(
                "bench", name, "lora", f"{number:064d}", "generation", "eval", "s" * 64, ids, [""] * n, [""] * n,
                [""] * n, {"exact_match": float(scores.mean()), "rougeL": float(rouges.mean())},
                {"exact_match": scores.tolist(), "rougeL": rouges.tolist()}, slices=slices))
    return current, baseline


def _gate_at_scale(n: int) -> dict[str, float]:
    from harness.gate import Baseline, GateConfig, check
    from harness.gate.baseline import entry_from_result
    from harness.report import write_reports
    from harness.results import RunState

    current, before = _suite(n)
    baseline = Baseline(entries={(r.suite, r.candidate): entry_from_result(r, versions={}, date="d") for r in before})
    config = GateConfig.from_mapping({"metrics": {"exact_match": {"tolerance": 0.02}, "rougeL": {"tolerance": 2.0}}})
    t: dict[str, float] = {}
    records = _timed(t, "gate_5_candidates_s", lambda: [g for r in current for g in check(r, baseline, config)])
    state = RunState(results=current, gates=records)
    with tempfile.TemporaryDirectory() as folder:
        _timed(t, "reports_s", lambda: write_reports(state, Path(folder)))
    t["slice_tests"] = sum(len(g.details.get("slices", [])) for g in records)
    return t


def run(n: int = 100_000, suite_n: int = 10_000) -> dict[str, Any]:
    """compare() at ``n`` pairs beside the bootstrap it replaced; gate + reports of a ``suite_n``-example suite."""
    return {"n": n, "suite_n": suite_n, "compare": _compare_at_scale(n), "suite": _gate_at_scale(suite_n)}


if __name__ == "__main__":
    print(strict_dumps(run(*(int(x) for x in sys.argv[1:])), indent=2))

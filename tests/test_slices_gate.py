"""Per-slice gate verdicts: paired per slice, corrected across slices x metrics, hidden regressions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.gate import Baseline, GateConfig, GateFailure, check, raise_on_failure
from harness.gate.baseline import BaselineEntry, entry_from_result
from harness.gate.slice_compare import compare_slices, subset_result
from harness.gate.slices import adjust_rows
from harness.results import EvalResult
from harness.stats import holm

LABELS = ("positive", "negative")


def result_of(correct, labels, *, candidate="lora", slices=True) -> EvalResult:
    n = len(correct)
    ids = [f"ex-{i:04d}" for i in range(n)]
    members = {"label": {label: [i for i, lab in zip(ids, labels, strict=True) if lab == label] for label in LABELS}}
    return EvalResult(
        suite="sentiment", candidate=candidate, kind="lora", fingerprint="m" * 64, task="classification",
        split="eval", split_fingerprint="e" * 64, example_ids=ids, inputs=[f"review {i}" for i in range(n)],
        references=list(labels), predictions=list(labels), metrics={"accuracy": float(np.mean(correct))},
        per_example={"correct": [float(c) for c in correct]}, signatures={"accuracy": "acc"},
        slices=members if slices else {})


def baseline_of(result: EvalResult) -> Baseline:
    return Baseline(entries={(result.suite, result.candidate): entry_from_result(result, versions={}, date="d")})


def gate(fail: bool = False, **extra) -> GateConfig:
    return GateConfig.from_mapping({"alpha": 0.05, "metrics": {"accuracy": {"tolerance": 0.03}},
                                    "fail_on_slice_regression": fail, **extra})


def hidden_regression_pair(n_per_label: int = 150):
    """Baseline 0.80 on both labels; current 0.98 on positive, 0.60 on negative: overall +0.09."""
    labels = [LABELS[i % 2] for i in range(2 * n_per_label)]
    rng = np.random.default_rng(0)
    base = (rng.random(2 * n_per_label) < 0.8).astype(float)
    current = base.copy()
    for i, label in enumerate(labels):
        if label == "positive" and base[i] == 0:
            current[i] = 1.0
        if label == "negative" and base[i] == 1 and rng.random() < 0.25:
            current[i] = 0.0
    return result_of(base, labels), result_of(current, labels)


def test_hidden_regression_is_flagged_and_passes_unless_the_suite_asks():
    base, current = hidden_regression_pair()
    assert current.metrics["accuracy"] > base.metrics["accuracy"]
    [record] = check(current, baseline_of(base), gate(fail=False))
    assert record.verdict in ("pass", "improved")
    assert record.details["hidden_regression"] is True
    assert record.details["slice_regression_labels"] == ["label: negative"]
    by_slice = {s["label"]: s for s in record.details["slices"]}
    assert by_slice["label: negative"]["verdict"] == "regressed"
    assert by_slice["label: positive"]["verdict"] in ("pass", "improved")
    assert by_slice["label: negative"]["delta"] < -0.1
    raise_on_failure([record], policy="pass")  # does not fail: the suite did not ask


def test_fail_on_slice_regression_fails_naming_the_slice_with_values_ci_and_p():
    base, current = hidden_regression_pair()
    [record] = check(current, baseline_of(base), gate(fail=True))
    with pytest.raises(GateFailure) as info:
        raise_on_failure([record], policy="pass")
    text = str(info.value)
    assert "hidden regression" in text
    assert "label: negative" in text and "label: positive" not in text.split("hidden regression")[1].split("\n\n")[0]
    line = next(s for s in text.splitlines() if "label: negative: accuracy" in s)
    assert "→" in line and "Δ -" in line and "CI [" in line and "p " in line and "Holm" in line


def test_small_slice_reads_inconclusive_with_its_size_and_mde():
    base, current = hidden_regression_pair(n_per_label=60)
    [record] = check(current, baseline_of(base), gate(min_slice_size=100))
    for row in record.details["slices"]:
        assert not row["tested"]
        assert row["reason"].startswith("inconclusive (n = 60 < 100), MDE ")
        assert row["mde"] > 0.03
    assert record.details["slice_regressions"] == []


def test_identical_rerun_has_no_slice_regression():
    base, _ = hidden_regression_pair()
    [record] = check(base, baseline_of(base), gate(fail=True))
    assert {s["verdict"] for s in record.details["slices"]} == {"pass"}
    raise_on_failure([record])


def test_membership_falls_back_to_the_baseline_and_survives_the_file_round_trip():
    base, current = hidden_regression_pair()
    entry = entry_from_result(base, versions={}, date="d")
    again = BaselineEntry.from_dict("sentiment", "lora", entry.as_dict())
    assert again.slices == base.slices
    bare = result_of(current.per_example["correct"], current.references, slices=False)
    [record] = check(bare, Baseline(entries={("sentiment", "lora"): again}), gate())
    assert record.details["slice_regression_labels"] == ["label: negative"]


def test_bh_is_selectable_and_never_stricter_than_holm():
    base, current = hidden_regression_pair()
    [holm_record] = check(current, baseline_of(base), gate())
    [bh_record] = check(current, baseline_of(base), gate(slice_correction="bh"))
    assert bh_record.details["slice_correction"] == "bh"
    for h, b in zip(holm_record.details["slices"], bh_record.details["slices"], strict=True):
        assert b["p_drop_adjusted"] <= h["p_drop_adjusted"] + 1e-12


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=12))
def test_adjust_rows_holm_equals_the_scalar_holm(p_values):
    assert np.allclose(adjust_rows(np.asarray(p_values), "holm"), holm(p_values))


def test_adjust_rows_bh_matches_the_textbook_step_up():
    p = np.array([0.01, 0.04, 0.03, 0.005])
    # sorted 0.005, 0.01, 0.03, 0.04 -> 0.02, 0.02, 0.04, 0.04 (p * m / rank, then running min from the top)
    assert np.allclose(adjust_rows(p, "bh"), [0.02, 0.04, 0.04, 0.02])


def test_subset_result_and_per_slice_comparison_use_the_overall_test():
    base, current = hidden_regression_pair()
    negatives = base.slices["label"]["negative"]
    sub = subset_result(current, negatives)
    assert sub.n == len(negatives)
    assert sub.metrics["accuracy"] == pytest.approx(np.mean([current.per_example["correct"][int(i[3:])]
                                                             for i in negatives]))
    rows = {r["label"]: r for r in compare_slices(base, current, "accuracy")}
    assert rows["label: negative"]["method"].lower().startswith("mcnemar")
    assert rows["label: negative"]["difference"] < 0 < rows["label: positive"]["difference"]
    assert rows["label: negative"]["significant_adjusted"] and rows["label: positive"]["significant_adjusted"]

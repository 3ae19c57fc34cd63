"""Degenerate-model checks: majority-class and chance references, constant-predictor and unparsed
flags, carried by compare results, the report's verdict line and candidates table, and the full
score signature (switching the scoring method makes a baseline not comparable)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_gate import baseline_of, make_result

from harness.gate import NOT_COMPARABLE, GateConfig, check
from harness.gate.ab import compare_paired
from harness.metrics.degenerate import degenerate_flags, reference_rates
from harness.metrics.labels import UNPARSED
from harness.protocol import DecodeParams
from harness.report.markdown import suite_page
from harness.report.sections import candidates_section
from harness.results import RunState
from harness.runner.checks import full_signatures, scoring_signature
from harness.spec import SuiteSpec

LABELS = ("positive", "negative")


def test_reference_rates_by_hand():
    truth = ["negative"] * 6 + ["positive"] * 4
    checks = reference_rates(truth, ["positive"] * 10, LABELS, train_labels=["positive"] * 7 + ["negative"] * 3)
    assert checks["majority_label"] == "negative" and checks["majority_rate"] == 0.6
    assert checks["train_majority_label"] == "positive" and checks["train_majority_accuracy"] == 0.4
    assert checks["chance"] == 0.5 and checks["n_labels"] == 2
    assert checks["top_prediction"] == "positive" and checks["top_prediction_share"] == 1.0
    assert checks["flags"] == ["constant predictor: 'positive' for 100% of examples"]


@pytest.mark.parametrize(("parsed", "flags"), [
    (["positive"] * 19 + ["negative"], ["constant predictor: 'positive' for 95% of examples"]),
    (["positive"] * 18 + ["negative"] * 2, []),
    ([UNPARSED] * 10 + ["positive"] * 5 + ["negative"] * 5, ["unparsed 50%: 10 of 20 replies name no label"]),
    ([UNPARSED] * 9 + ["positive"] * 6 + ["negative"] * 5, []),
    ([UNPARSED] * 20, ["unparsed 100%: 20 of 20 replies name no label"]),
])
def test_flag_thresholds(parsed, flags):
    assert degenerate_flags(parsed) == flags


def _classified(candidate: str, predictions: list[str], truth: list[str]):
    correct = [1.0 if p == t else 0.0 for p, t in zip(predictions, truth, strict=True)]
    result = make_result(correct, candidate=candidate)
    result.references, result.predictions = list(truth), list(predictions)
    result.details["degenerate"] = reference_rates(truth, predictions, LABELS)
    return result


def test_a_constant_label_candidate_beating_an_unparsed_base_is_flagged_everywhere():
    """The issue's point 1: LoRA answers 'positive' to everything, the base names no label."""
    truth = ["positive", "negative"] * 100
    base = _classified("base", [UNPARSED] * 200, truth)
    lora = _classified("lora", ["positive"] * 200, truth)
    result = compare_paired(base, lora, "accuracy", base.per_example["correct"], lora.per_example["correct"],
                            "binary")
    assert result.p_value < 0.001 and result.mean_b == 0.5  # "significantly better" ...
    assert list(result.flags) == ["base: unparsed 100%: 200 of 200 replies name no label",
                                  "lora: constant predictor: 'positive' for 100% of examples"]
    assert lora.metrics["accuracy"] <= lora.details["degenerate"]["majority_rate"]  # ... but no better than majority
    state = RunState(results=[base, lora])
    page = suite_page(state, "sentiment", intervals={}, images=[], date="d")
    verdict_line = page.splitlines()[2]
    assert "⚠ lora: constant predictor: 'positive' for 100% of examples" in verdict_line
    assert "⚠ base: unparsed 100%" in verdict_line
    table = candidates_section([base, lora], {})
    assert "| *majority class ('positive')* | reference |" in table and "| *chance (1/2)* " in table


def suite(**changes) -> SuiteSpec:
    fields = {"name": "sentiment", "task": "classification", "train": None, "validation": None,
              "eval": Path("eval.jsonl"), "labels": LABELS}
    return SuiteSpec(**{**fields, **changes})


def test_the_signature_covers_method_decoding_system_prompt_labels_and_options():
    plain = scoring_signature(suite(), "generate")
    assert scoring_signature(suite(), "likelihood") != plain
    assert scoring_signature(suite(decode=DecodeParams(max_new_tokens=9)), "generate") != plain
    assert scoring_signature(suite(label_aliases={"pos": "positive"}), "generate") != plain
    assert scoring_signature(suite(metric_options={"rouge_stemmer": False}), "generate") != plain
    assert scoring_signature(suite(decode=DecodeParams(max_new_tokens=9)), "likelihood") == \
        scoring_signature(suite(), "likelihood")  # decoding does not touch a likelihood score
    assert scoring_signature(suite(system="Answer with one word."), "generate") != plain


def test_switching_the_scoring_method_reads_not_comparable_not_improved():
    """The issue's point 5: generate 0.000 -> likelihood 0.499 must not read 'improved'."""
    generated = make_result([0.0] * 200)
    generated.signatures = full_signatures(generated.signatures, suite(), "generate")
    scored = make_result([1.0, 0.0] * 100)
    scored.signatures = full_signatures(scored.signatures, suite(), "likelihood")
    [record] = check(scored, baseline_of(generated), GateConfig.from_mapping({}))
    assert record.verdict == NOT_COMPARABLE and "method:generate" in record.message
    assert "method:likelihood" in record.message


def test_rescoring_keeps_the_scoring_part_of_the_live_runs_signature():
    from harness.runner.checks import carried_signatures

    live = full_signatures({"accuracy": "acc-v1"}, suite(), "likelihood")
    assert carried_signatures({"accuracy": "acc-v1"}, live) == live
    assert carried_signatures({"accuracy": "acc-v2"}, live)["accuracy"].startswith("acc-v2|method:likelihood")
    assert carried_signatures({"accuracy": "acc-v1"}, {}) == {"accuracy": "acc-v1"}

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


# -- classification: the 78.5 % fine-tune, a collapsed base, likelihood and short labels ---------------
def test_one_label_and_unparsed_text_for_the_rest_is_a_constant_predictor():
    from harness.metrics.degenerate import degenerate_flags

    parsed = ["positive"] * 157 + [""] * 43  # 78.5 % one label, 21.5 % no label at all
    assert degenerate_flags(parsed) == [
        "constant predictor: 'positive' for 78.5% of examples, the other 21.5% name no label"]


def test_a_base_answering_one_intent_for_94_5_percent_has_collapsed():
    from harness.metrics.degenerate import degenerate_flags

    intents = [f"intent_{i}" for i in range(77)]
    truth = [intents[i % 77] for i in range(200)]
    parsed = ["card_arrival"] * 189 + truth[:11]
    assert degenerate_flags(parsed, truth) == ["collapsed onto one label: 'card_arrival' for 94.5% of examples "
                                               "(true for 0%)"]
    balanced = ["positive", "negative"] * 100
    biased = ["positive"] * 150 + ["negative"] * 50  # 75 % one of two balanced labels: biased, not collapsed
    assert degenerate_flags(biased, balanced) == []


def test_likelihood_scoring_onto_the_shortest_label_is_named():
    from harness.metrics.degenerate import reference_rates, shortest_label_note

    labels = ["refund", "card_arrival", "exchange_rate"]
    truth = [labels[i % 3] for i in range(90)]
    checks = reference_rates(truth, ["refund"] * 90, labels)
    [note] = shortest_label_note(labels, checks)
    assert note.startswith("likelihood scoring favours the shortest label: 'refund' (6 characters; labels run to 13)")
    assert 'likelihood_normalize = "chars"' in note
    assert shortest_label_note(["yes", "no!"], reference_rates(["yes"] * 20, ["yes"] * 20, ["yes", "no!"])) == []


# -- generation -----------------------------------------------------------------------------------------
def _e2e(n: int = 100) -> tuple[list[str], list[str]]:
    """E2E-shaped data-to-text: restaurant fields in, one sentence naming them out."""
    names = ["Aromi", "Bibimbap House", "Cotto", "Giraffe", "Zizzi", "Wildwood", "Loch Fyne", "The Punter",
             "Strada", "Alimentum", "Cocum", "Fitzbillies"]
    foods = ["Italian", "Chinese", "French", "Indian", "Japanese", "English"]
    areas = ["city centre", "riverside"]
    inputs, references = [], []
    for i in range(n):
        name, food, area = names[i % 12], foods[(i // 12) % 6], areas[i % 2]
        inputs.append(f"name[{name}], food[{food}], area[{area}], priceRange[£{20 + i}-{25 + i}]")
        references.append(f"{name} serves {food} food in the {area} for £{20 + i}-{25 + i}.")
    return inputs, references


def test_a_template_reply_for_every_input_is_degenerate_generation():
    from harness.metrics.degenerate_text import generation_checks

    inputs, references = _e2e()
    template = ["There is a restaurant in the city centre that serves food."] * 73 + \
               ["It is a nice place to eat."] * 27
    checks = generation_checks(template, references, inputs)
    assert checks["distinct_outputs"] == 2 and checks["top_output_share"] == 0.73
    assert checks["reference"]["distinct_outputs"] == 100
    flags = checks["flags"]
    assert flags[0].startswith("degenerate generation: 2 distinct outputs for 100 inputs (references: 100); "
                               "the most frequent 73 times (73%)")
    assert any(f.startswith("ignores its input") for f in flags)


def test_replies_that_differ_but_name_nothing_from_their_input_ignore_it():
    from harness.metrics.degenerate_text import generation_checks

    inputs, references = _e2e()
    shuffled = references[1:] + references[:1]  # fluent, all distinct, each about another restaurant
    checks = generation_checks(shuffled, references, inputs)
    assert checks["distinct_outputs"] == 100 and checks["input_lift"] < 0.05 < checks["reference"]["input_lift"]
    assert [f.split(":")[0] for f in checks["flags"]] == ["ignores its input"]


def test_faithful_replies_raise_no_flag_and_empty_or_cut_replies_do():
    from harness.metrics.degenerate_text import generation_checks, input_use

    inputs, references = _e2e()
    paraphrase = [r.replace("serves", "offers").replace(" food", " dishes") for r in references]
    assert generation_checks(paraphrase, references, inputs)["flags"] == []
    own, other = input_use(references, inputs)
    assert own == pytest.approx(1.0) and other < 0.25  # every specific word of its own input, a fifth of others'
    empty = ["" if i % 5 == 0 else p for i, p in enumerate(paraphrase)]
    cut = generation_checks(empty, references, inputs, completion_tokens=[16] * 60 + [5] * 40, max_new_tokens=16)
    assert "empty replies: 20% of outputs are empty" in cut["flags"]
    assert "truncated replies: 60% of outputs stop at max_new_tokens" in cut["flags"]

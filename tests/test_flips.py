"""Flip decomposition: harmful / beneficial / churn / unchanged, against the baseline and the base."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st
from test_gate import ACCURACY_GATE, baseline_of, make_result

from harness.gate import check
from harness.gate.baseline import Baseline
from harness.gate.flips import FLIP_TYPES, decompose, default_threshold, flip_type
from harness.report import write_reports
from harness.results import RunState
from harness.session import compare_results


def test_each_flip_type_on_binary_scores():
    ids = ["a", "b", "c", "d", "e"]
    before = [1, 0, 1, 1, 0]
    after = [0, 1, 1, 1, 0]
    flips = decompose(ids, before, after, outputs_before={"a": "pos", "b": "neg", "c": "pos", "d": "Pos!", "e": "x"},
                      outputs_after={"a": "neg", "b": "pos", "c": "pos", "d": "positive", "e": "x"},
                      threshold=0.0, slices={"label": {"positive": ["a", "c", "d"], "negative": ["b", "e"]}})
    assert flips["ids"] == {"harmful": ["a"], "beneficial": ["b"], "churn": ["d"], "unchanged": ["c", "e"]}
    assert flips["counts"] == {"harmful": 1, "beneficial": 1, "churn": 1, "unchanged": 2}
    assert flips["slices"]["label"]["positive"] == {"harmful": 1, "beneficial": 0, "churn": 1, "unchanged": 1}
    assert flips["slices"]["label"]["negative"] == {"harmful": 0, "beneficial": 1, "churn": 0, "unchanged": 1}


def test_continuous_scores_flip_only_beyond_the_threshold():
    assert default_threshold("rougeL") == 1.0 and default_threshold("accuracy") == 0.01
    assert flip_type(40.0, 39.5, "a", "b", threshold=1.0) == "churn"
    assert flip_type(40.0, 38.9, "a", "b", threshold=1.0) == "harmful"
    assert flip_type(40.0, 41.2, "a", "a", threshold=1.0) == "beneficial"
    assert flip_type(40.0, 40.5, "a", "a", threshold=1.0) == "unchanged"
    # TER: lower is better, so a rise is harmful
    assert flip_type(40.0, 45.0, "a", "b", threshold=1.0, higher_is_better=False) == "harmful"
    assert flip_type(40.0, 35.0, "a", "b", threshold=1.0, higher_is_better=False) == "beneficial"


def test_without_recorded_outputs_churn_is_not_claimed():
    flips = decompose(["a", "b"], [1, 1], [1, 1], outputs_before=None, outputs_after={"a": "x", "b": "y"},
                      threshold=0.0)
    assert flips["outputs_compared"] is False
    assert flips["counts"]["churn"] == 0 and flips["counts"]["unchanged"] == 2


@given(st.lists(st.tuples(st.sampled_from([0.0, 1.0]), st.sampled_from([0.0, 1.0]),
                          st.sampled_from(["p", "n"]), st.sampled_from(["p", "n"])), max_size=40))
def test_every_example_gets_exactly_one_type(rows):
    ids = [f"e{i}" for i in range(len(rows))]
    flips = decompose(ids, [r[0] for r in rows], [r[1] for r in rows],
                      outputs_before={i: r[2] for i, r in zip(ids, rows, strict=True)},
                      outputs_after={i: r[3] for i, r in zip(ids, rows, strict=True)}, threshold=0.0)
    assert sum(flips["counts"].values()) == len(rows)
    assert sorted(i for kind in FLIP_TYPES for i in flips["ids"][kind]) == sorted(ids)
    harmful = [i for i, r in zip(ids, rows, strict=True) if r[0] > r[1]]
    assert flips["ids"]["harmful"] == harmful


def planted():
    """A baseline that was right on every example, and a run that breaks 6 and fixes none."""
    accepted = make_result([1.0] * 60)
    current = make_result([0.0 if i < 6 else 1.0 for i in range(60)])
    current.slices = {"half": {"first": current.example_ids[:30], "second": current.example_ids[30:]}}
    return accepted, current


def test_the_gate_records_flips_against_the_baseline_overall_and_per_slice():
    accepted, current = planted()
    current.predictions[40] = current.predictions[40].upper()  # same verdict, different text: churn
    (record,) = check(current, baseline_of(accepted), ACCURACY_GATE)
    flips = record.details["flips"]
    assert flips["ids"]["harmful"] == [f"ex-{i:04d}" for i in range(6)]
    assert flips["ids"]["churn"] == ["ex-0040"]
    assert flips["counts"] == {"harmful": 6, "beneficial": 0, "churn": 1, "unchanged": 53}
    assert flips["slices"]["half"]["first"]["harmful"] == 6
    assert flips["slices"]["half"]["second"] == {"harmful": 0, "beneficial": 0, "churn": 1, "unchanged": 29}


def test_a_baseline_file_without_outputs_still_gives_flips():
    accepted, current = planted()
    document = baseline_of(accepted).as_dict()
    for entry in document["suites"]["sentiment"].values():
        del entry["outputs"]
    (record,) = check(current, Baseline.from_dict(json.loads(json.dumps(document))), ACCURACY_GATE)
    assert record.details["flips"]["counts"]["harmful"] == 6
    assert record.details["flips"]["outputs_compared"] is False


def test_comparisons_record_flips_against_the_other_candidate():
    base = make_result([0.0 if i % 3 == 0 else 1.0 for i in range(60)], candidate="base")
    tuned = make_result([0.0 if i % 5 == 0 else 1.0 for i in range(60)])
    _, record = compare_results(base, tuned, "accuracy")
    counts = record.result["flips"]["counts"]
    expected_harmful = sum(1 for i in range(60) if i % 5 == 0 and i % 3 != 0)
    expected_beneficial = sum(1 for i in range(60) if i % 3 == 0 and i % 5 != 0)
    assert counts["harmful"] == expected_harmful and counts["beneficial"] == expected_beneficial


def test_flips_are_in_results_json_and_the_markdown_gate_section(tmp_path):
    accepted, current = planted()
    state = RunState(results=[current], gates=check(current, baseline_of(accepted), ACCURACY_GATE))
    write_reports(state, tmp_path)
    document = json.loads((tmp_path / "results.json").read_text())
    assert document["state"]["gates"][0]["details"]["flips"]["counts"]["harmful"] == 6
    page = (tmp_path / "sentiment.md").read_text()
    gate = page.split("## Gate", 1)[1].split("\n## ", 1)[0]
    assert "### Flips" in gate
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in gate.splitlines()
            if line.startswith("|")]
    assert ["lora", "accuracy", "all", "6", "0", "0", "54"] in rows
    assert ["lora", "accuracy", "half=first", "6", "0", "0", "24"] in rows

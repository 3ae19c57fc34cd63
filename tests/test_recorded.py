"""The ``recorded`` kind: outputs produced elsewhere, scored and gated like any candidate."""

from __future__ import annotations

import json

import pytest
from gradedproject import ROWS, good_outputs, session, write_recorded, write_spec

from harness.errors import DatasetError, SpecError


def test_recorded_outputs_are_scored_by_example_id(tmp_path):
    spec = write_spec(tmp_path)
    run = session(tmp_path, spec)
    try:
        good, poor = run.evaluate("s", "good"), run.evaluate("s", "poor")
        assert good.predictions == [good_outputs()[i] for i, _, _ in ROWS]
        assert good.kind == "recorded" and good.fingerprint.startswith("recorded:")
        assert good.metrics["rougeL"] > poor.metrics["rougeL"]
        result = run.compare(poor, good, "rougeL")
        assert result.p_value < 0.01
    finally:
        run.close()


def test_the_order_of_the_file_does_not_matter_and_editing_it_changes_the_fingerprint(tmp_path):
    spec = write_spec(tmp_path)
    outputs = good_outputs()
    first = session(tmp_path, spec)
    fingerprint = first.evaluate("s", "good").fingerprint
    first.close()
    reordered = dict(reversed(list(outputs.items())))
    write_recorded(tmp_path, "good", reordered)
    second = session(tmp_path, spec)
    assert second.evaluate("s", "good").fingerprint == fingerprint
    second.close()
    reordered[ROWS[0][0]] = "changed"
    write_recorded(tmp_path, "good", reordered)
    third = session(tmp_path, spec)
    result = third.evaluate("s", "good")
    third.close()
    assert result.fingerprint != fingerprint and result.predictions[0] == "changed"


@pytest.mark.parametrize(("lines", "message"), [
    (['{"id": "p-00", "output": "x"}', '{"id": "p-00", "output": "y"}'], r"good.jsonl:2: field 'id': 'p-00' repeats line 1"),
    (['{"id": "p-00", "output": 3}'], r"good.jsonl:1: field 'output'.*got int"),
    (['{"id": "p-00"'], r"good.jsonl:1: not valid JSON"),
    (['{"output": "x"}'], r"good.jsonl:1: field 'id'"),
])
def test_bad_lines_are_named_by_file_and_line(tmp_path, lines, message):
    spec = write_spec(tmp_path)
    (tmp_path / "good.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    run = session(tmp_path, spec)
    with pytest.raises(DatasetError, match=message):
        run.evaluate("s", "good")
    run.close()


def test_unknown_and_missing_ids_are_named(tmp_path):
    spec = write_spec(tmp_path)
    outputs = good_outputs()
    outputs.pop(ROWS[3][0])
    outputs["not-an-eval-id"] = "x"
    write_recorded(tmp_path, "good", outputs)
    run = session(tmp_path, spec)
    with pytest.raises(DatasetError, match="'not-an-eval-id'"):
        run.evaluate("s", "good")
    outputs.pop("not-an-eval-id")
    write_recorded(tmp_path, "good", outputs)
    run.close()
    run = session(tmp_path, spec)
    with pytest.raises(DatasetError, match=f"no recorded output: '{ROWS[3][0]}'"):
        run.evaluate("s", "good")
    run.close()


def test_a_recorded_candidate_needs_a_path_at_load(tmp_path):
    from harness.spec import load_spec

    spec = write_spec(tmp_path)
    spec.write_text(spec.read_text().replace('path = "good.jsonl"\n', ""), encoding="utf-8")
    with pytest.raises(SpecError, match=r"candidates\.good.*path"):
        load_spec(spec)


def test_reports_outputs_replay_as_a_recorded_candidate(tmp_path):
    """A run's own outputs file (``prediction`` field) is a valid recorded file."""
    spec = write_spec(tmp_path)
    rows = [json.dumps({"id": i, "prediction": o, "reference": "r"}) for i, o in good_outputs().items()]
    (tmp_path / "good.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    run = session(tmp_path, spec)
    assert run.evaluate("s", "good").predictions[0] == good_outputs()[ROWS[0][0]]
    run.close()

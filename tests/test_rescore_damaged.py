"""`ft-harness rescore` on damaged input: each problem is a harness error (exit 3) naming the file and
field, or a usage error (exit 2), never exit 1 (which means "a gated metric fails") or a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import EXIT_HARNESS_ERROR, EXIT_OK, EXIT_USAGE, main
from harness.report.json_out import SCHEMA_VERSION, STATE_KEY

IDS = [f"e{i}" for i in range(6)]


def _write_outputs(path: Path, reference: str, prediction: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"id": i, "input": "x", "reference": reference, "prediction": prediction})
                            + "\n" for i in IDS), encoding="utf-8")


def _results(run: Path, state: dict) -> None:
    (run / "results.json").write_text(json.dumps({"schema_version": SCHEMA_VERSION, STATE_KEY: state}),
                                      encoding="utf-8")


def _rescore(capsys, *argv: str) -> tuple[int, str]:
    code = main(["rescore", *argv])
    return code, capsys.readouterr().err


def test_task_for_a_mixed_run_names_the_file_it_cannot_score(tmp_path, capsys):
    run = tmp_path / "run"
    _write_outputs(run / "outputs" / "cls" / "a.jsonl", "positive", "positive")
    _write_outputs(run / "outputs" / "gen" / "b.jsonl", "a long reference text", "some generated text")
    code, err = _rescore(capsys, str(run), "--task", "classification", "--labels", "positive,negative")
    assert code == EXIT_HARNESS_ERROR, err
    assert str(run / "outputs" / "gen" / "b.jsonl") in err and "--task classification applies to every suite" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(("state", "named"), [
    ({"results": {}}, "field 'state.results': expected a list of records, got an object"),
    ({"results": [{"suite": "s", "candidate": "a", "metrics": "accuracy"}]},
     "field 'state.results[0].metrics': expected an object, got a string"),
    ({"results": [{"suite": "s", "candidate": "a", "example_ids": [1]}]},
     "field 'state.results[0].example_ids': at [0]: expected a string, got a number"),
    ({"gates": [{"suite": "s", "candidate": "a", "metric": "accuracy", "verdict": "pass", "baseline": None,
                 "current": "high", "message": ""}]},
     "field 'state.gates[0].current': expected a number, got a string"),
    ({"comparisons": ["x"]}, "field 'state.comparisons[0]': expected an object, got a string"),
])
def test_a_malformed_results_json_names_the_field(tmp_path, capsys, state, named):
    run = tmp_path / "run"
    _write_outputs(run / "outputs" / "s" / "a.jsonl", "positive", "positive")
    _results(run, state)
    code, err = _rescore(capsys, str(run), "--task", "classification", "--labels", "positive,negative")
    assert code == EXIT_HARNESS_ERROR, err
    assert str(run / "results.json") in err and named in err and "Traceback" not in err


def test_an_outputs_path_that_is_a_directory_is_named(tmp_path, capsys):
    run = tmp_path / "run"
    _write_outputs(run / "outputs" / "s" / "a.jsonl", "positive", "positive")
    (run / "outputs" / "s" / "b.jsonl").mkdir()
    code, err = _rescore(capsys, str(run), "--task", "classification", "--labels", "positive,negative")
    assert code == EXIT_HARNESS_ERROR, err
    assert str(run / "outputs" / "s" / "b.jsonl") in err and "is a directory" in err


def test_out_equal_to_the_run_folder_is_refused_and_the_run_kept(tmp_path, capsys):
    run = tmp_path / "run"
    _write_outputs(run / "outputs" / "s" / "a.jsonl", "positive", "positive")
    _results(run, {"results": []})
    before = (run / "results.json").read_bytes()
    code, err = _rescore(capsys, str(run), "--out", str(run / "."), "--task", "classification",
                         "--labels", "positive,negative")
    assert code == EXIT_USAGE and "--out" in err
    assert (run / "results.json").read_bytes() == before
    assert _rescore(capsys, str(run), "--task", "classification", "--labels", "positive,negative")[0] == EXIT_OK
    assert (run / "results.json").read_bytes() == before

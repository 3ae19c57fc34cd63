"""The baseline store: schema, stable output, atomic all-or-nothing updates, clear load errors, CLI."""

from __future__ import annotations

import json
import os

import pytest
from test_gate import correctness, make_result

import harness.jsonio
from harness.cli import EXIT_FINDINGS, EXIT_HARNESS_ERROR, EXIT_OK, main
from harness.errors import BaselineError
from harness.gate import (
    NO_BASELINE,
    SCHEMA_VERSION,
    BaselineRefused,
    GateConfig,
    check,
    load_baseline,
    update_baseline,
)
from harness.report.json_out import write_results_json
from harness.results import RunState

TRAINING = {"hyperparameters": {"learning_rate": 0.003, "r": 16, "target_modules": ("q", "v"),
                                "hub": {"hf_token": "hf_abcdefghijklmnopqrstuvwxyz"}, "tag": "sk-abcdefghijklmnopqrstu"},
            "runtime_s": 4.2, "trainable_params": 1000, "total_params": 130000, "train_loss": 0.4,
            "eval_loss": 0.5, "log_history": [], "rows_dropped": 0, "rows_truncated": 0, "notes": []}


def run_state(*results) -> RunState:
    return RunState(results=list(results))


@pytest.fixture
def two_results():
    return (make_result(correctness(40, 0.8, 1), candidate="lora", training=TRAINING),
            make_result(correctness(40, 0.6, 2), candidate="base"))


def test_round_trip_and_stable_text(tmp_path, two_results):
    path = tmp_path / "reports" / "baseline.json"
    report = update_baseline(path, run_state(*two_results), date="2025-06-01")
    assert report.written and sorted(report.added) == ["sentiment/base", "sentiment/lora"]
    text = path.read_text()
    data = json.loads(text)
    assert text == json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert data["schema_version"] == SCHEMA_VERSION
    entry = data["suites"]["sentiment"]["lora"]
    lora = two_results[0]
    assert entry["split_fingerprint"] == lora.split_fingerprint and entry["model_fingerprint"] == lora.fingerprint
    assert entry["hyperparameters"] == {"learning_rate": 0.003, "r": 16, "target_modules": ["q", "v"],
                                        "hub": {"hf_token": "***"}, "tag": "***"}
    assert "hf_abc" not in text and "sk-abc" not in text
    assert entry["versions"]["harness"] and entry["versions"]["scipy"] and entry["date"] == "2025-06-01"
    accuracy = entry["metrics"]["accuracy"]
    assert accuracy["value"] == lora.metrics["accuracy"] and accuracy["n"] == 40 and accuracy["signature"] == "acc-v1"
    assert accuracy["scores"] == dict(zip(lora.example_ids, lora.per_example["correct"], strict=True))
    assert entry["metrics"]["f1_macro"] == {"value": 0.5, "n": 40, "signature": "acc-v1", "score": None,
                                            "score_kind": None, "scores": None}
    loaded = load_baseline(path)
    assert loaded.entry("sentiment", "lora").metrics["accuracy"].scores == accuracy["scores"]
    assert loaded.entry("sentiment", "base").hyperparameters is None


def test_unchanged_results_keep_the_file_byte_for_byte(tmp_path, two_results):
    path = tmp_path / "baseline.json"
    update_baseline(path, run_state(*two_results), date="2025-06-01")
    before = path.read_bytes()
    again = update_baseline(path, run_state(*two_results), date="2030-01-01")
    assert not again.written and sorted(again.unchanged) == ["sentiment/base", "sentiment/lora"]
    assert path.read_bytes() == before
    changed = make_result(correctness(40, 0.9, 3), candidate="lora")
    report = update_baseline(path, run_state(changed), date="2030-01-01")
    assert report.updated == ["sentiment/lora"]
    stored = json.loads(path.read_text())["suites"]["sentiment"]
    assert stored["lora"]["date"] == "2030-01-01" and stored["base"]["date"] == "2025-06-01"


def test_missing_file_is_an_empty_baseline_with_a_note(tmp_path):
    baseline = load_baseline(tmp_path / "nothing.json")
    assert not baseline.exists and not baseline.entries
    assert "no baseline yet" in baseline.note and "--ft-update-baseline" in baseline.note
    result = make_result(correctness(20, 0.8, 4))
    records = check(result, baseline, GateConfig.from_mapping({}))
    assert [r.verdict for r in records] == [NO_BASELINE]


def test_corrupt_json_names_file_and_line(tmp_path):
    path = tmp_path / "baseline.json"
    path.write_text('{\n  "schema_version": 1,\n  "suites": {,\n}\n')
    with pytest.raises(BaselineError) as info:
        load_baseline(path)
    assert str(info.value).startswith(f"{path}:3:")
    assert "not valid JSON" in str(info.value)


def test_wrong_schema_names_file_line_and_field(tmp_path, two_results):
    path = tmp_path / "baseline.json"
    update_baseline(path, run_state(*two_results), date="2025-06-01")
    data = json.loads(path.read_text())
    data["suites"]["sentiment"]["lora"]["metrics"]["accuracy"]["n"] = "forty"
    text = json.dumps(data, indent=2, sort_keys=True)
    path.write_text(text)
    lines = text.splitlines()
    lora = next(i for i, line in enumerate(lines) if line.strip() == '"lora": {')
    accuracy = next(i for i in range(lora, len(lines)) if lines[i].strip() == '"accuracy": {')
    expected = next(i for i in range(accuracy, len(lines)) if lines[i].strip().startswith('"n":')) + 1
    with pytest.raises(BaselineError) as info:
        load_baseline(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{expected}: field 'suites.sentiment.lora.metrics.accuracy.n'")
    assert "'forty' is not of type 'integer'" in message


@pytest.mark.parametrize(("mutate", "field"), [
    (lambda d: d.update(schema_version=99), "'schema_version'"),
    (lambda d: d["suites"]["sentiment"]["base"].pop("split_fingerprint"), "'suites.sentiment.base'"),
    (lambda d: d.update(extra=1), "'(top level)'"),
])
def test_schema_errors(tmp_path, two_results, mutate, field):
    path = tmp_path / "baseline.json"
    update_baseline(path, run_state(*two_results), date="2025-06-01")
    data = json.loads(path.read_text())
    mutate(data)
    path.write_text(json.dumps(data, indent=2, sort_keys=True))
    with pytest.raises(BaselineError, match=f"field {field.replace('(', '[(]').replace(')', '[)]')}"):
        load_baseline(path)


def test_changed_eval_set_is_refused_without_force_all_or_nothing(tmp_path, two_results):
    path = tmp_path / "baseline.json"
    update_baseline(path, run_state(*two_results), date="2025-06-01")
    before = path.read_bytes()
    moved = make_result(correctness(40, 0.8, 5), candidate="lora", split_fingerprint="f" * 64)
    newcomer = make_result(correctness(40, 0.8, 6), candidate="full")
    with pytest.raises(BaselineRefused) as info:
        update_baseline(path, run_state(moved, newcomer), date="2025-07-01")
    message = str(info.value)
    assert "sentiment/lora: eval set changed, fingerprint eeeeeeeeeeee → ffffffffffff" in message
    assert "--ft-force" in message and "nothing was written" in message
    assert path.read_bytes() == before  # the newcomer was not written either
    report = update_baseline(path, run_state(moved, newcomer), force=True, date="2025-07-01")
    assert report.forced == ["sentiment/lora"] and report.added == ["sentiment/full"]
    assert load_baseline(path).entry("sentiment", "lora").split_fingerprint == "f" * 64


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_interrupted_write_leaves_the_old_file(tmp_path, two_results, monkeypatch, failing):
    path = tmp_path / "baseline.json"
    update_baseline(path, run_state(*two_results), date="2025-06-01")
    before = path.read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(harness.jsonio.os, failing, broken)
    newer = make_result(correctness(40, 0.95, 7), candidate="lora")
    with pytest.raises(OSError, match="disk full"):
        update_baseline(path, run_state(newer), date="2025-07-01")
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["baseline.json"]  # no temp file left behind
    load_baseline(path)


def test_suite_filter_and_unknown_suite(tmp_path, two_results):
    path = tmp_path / "baseline.json"
    other = make_result(correctness(20, 0.5, 8), suite="other", candidate="base")
    report = update_baseline(path, run_state(*two_results, other), suites=["other"], date="2025-06-01")
    assert report.added == ["other/base"]
    assert set(load_baseline(path).entries) == {("other", "base")}
    with pytest.raises(BaselineError, match="no results for suite\\(s\\) missing"):
        update_baseline(path, run_state(*two_results), suites=["missing"])
    with pytest.raises(BaselineError, match="nothing to accept"):
        update_baseline(path, RunState())


def test_duplicate_example_ids_are_rejected(tmp_path):
    result = make_result([1.0, 0.0, 1.0], ids=["a", "b", "a"])
    with pytest.raises(BaselineError, match="example id 'a' occurs more than once"):
        update_baseline(tmp_path / "baseline.json", run_state(result))
    assert not (tmp_path / "baseline.json").exists()


# -- CLI ------------------------------------------------------------------------------------------
def test_cli_accept_and_show(tmp_path, two_results, capsys):
    results, baseline = tmp_path / "results.json", tmp_path / "baseline.json"
    write_results_json(run_state(*two_results), results)
    assert main(["baseline", "accept", "--results", str(results), "--baseline", str(baseline)]) == EXIT_OK
    assert "2 added" in capsys.readouterr().out
    assert set(load_baseline(baseline).entries) == {("sentiment", "lora"), ("sentiment", "base")}
    assert main(["baseline", "show", "--baseline", str(baseline)]) == EXIT_OK
    shown = capsys.readouterr().out
    lora = two_results[0]
    assert f"| sentiment | lora        | accuracy | {lora.metrics['accuracy']:.3f}" in shown

    moved = make_result(correctness(40, 0.8, 9), candidate="lora", split_fingerprint="f" * 64)
    write_results_json(run_state(moved), results)
    before = baseline.read_bytes()
    args = ["baseline", "accept", "--results", str(results), "--baseline", str(baseline)]
    assert main(args) == EXIT_FINDINGS
    assert "pass --force" in capsys.readouterr().err and baseline.read_bytes() == before
    assert main([*args, "--force"]) == EXIT_OK


def test_cli_errors(tmp_path, capsys):
    assert main(["baseline", "accept", "--results", str(tmp_path / "none.json"),
                 "--baseline", str(tmp_path / "b.json")]) == EXIT_HARNESS_ERROR
    assert "run `pytest suites/` first" in capsys.readouterr().err
    broken = tmp_path / "broken.json"
    broken.write_text("{\n\n  nope\n")
    assert main(["baseline", "show", "--baseline", str(broken)]) == EXIT_HARNESS_ERROR
    assert f"{broken}:3:" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("where", ["value", "score"])
def test_non_finite_baseline_numbers_are_errors_naming_file_line_and_field(tmp_path, two_results, bad, where):
    """NaN would switch the gate off (a silent pass), Infinity fail it forever: both refused on read."""
    path = tmp_path / "baseline.json"
    update_baseline(path, run_state(*two_results), date="2025-06-01")
    data = json.loads(path.read_text())
    accuracy = data["suites"]["sentiment"]["lora"]["metrics"]["accuracy"]
    first_id = sorted(accuracy["scores"])[0]
    if where == "value":
        accuracy["value"] = 0.123456789
        field, token = "suites.sentiment.lora.metrics.accuracy.value", "0.123456789"
    else:
        accuracy["scores"][first_id] = 0.123456789
        field, token = f"suites.sentiment.lora.metrics.accuracy.scores.{first_id}", "0.123456789"
    text = json.dumps(data, indent=2, sort_keys=True)
    expected_line = text[:text.index(token)].count("\n") + 1
    path.write_text(text.replace(token, bad))
    with pytest.raises(BaselineError) as info:
        load_baseline(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{expected_line}: field '{field}'")
    assert "not a finite number" in message


def test_non_finite_baseline_fails_the_cli_with_the_harness_error_code(tmp_path, two_results, capsys):
    path = tmp_path / "baseline.json"
    update_baseline(path, run_state(*two_results), date="2025-06-01")
    text = path.read_text()
    value = json.loads(text)["suites"]["sentiment"]["base"]["metrics"]["accuracy"]["value"]
    path.write_text(text.replace(f'"value": {json.dumps(value)}', '"value": NaN', 1))
    assert main(["baseline", "show", "--baseline", str(path)]) == EXIT_HARNESS_ERROR
    assert "not a finite number" in capsys.readouterr().err

"""Bad input to the newer entry points: each mistake is refused naming the file and field, no traceback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.cli import EXIT_HARNESS_ERROR, main
from harness.report import write_reports
from harness.rescore import rescore_run

IDS = [f"e{i:02d}" for i in range(8)]


def _scored_run(tmp_path: Path) -> Path:
    """A run folder as a classification run writes it (outputs plus results.json with each task)."""
    raw = tmp_path / "raw" / "outputs" / "mini" / "a.jsonl"
    raw.parent.mkdir(parents=True)
    raw.write_text("".join(json.dumps({"id": i, "input": f"review {i}", "reference": "positive",
                                       "prediction": "positive" if n % 2 else "negative"}) + "\n"
                           for n, i in enumerate(IDS)), encoding="utf-8")
    outcome = rescore_run(tmp_path / "raw", task="classification", labels=["positive", "negative"])
    run = tmp_path / "run"
    write_reports(outcome.state, run)
    shutil.copytree(tmp_path / "raw" / "outputs", run / "outputs")
    return run


def test_rescore_task_that_contradicts_the_run_is_refused(tmp_path: Path, capsys):
    run = _scored_run(tmp_path)
    code = main(["rescore", str(run), "--task", "generation", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == EXIT_HARNESS_ERROR
    assert str(run / "outputs" / "mini" / "a.jsonl") in err
    assert "--task generation contradicts the run" in err and "classification" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(("option", "below"), [("--out", ""), ("--cache-dir", ""), ("--cache-dir", "sub")])
def test_evaluate_refuses_a_file_where_a_directory_goes(tmp_path: Path, capsys, option: str, below: str):
    taken = tmp_path / "taken.jsonl"
    taken.write_text("{}\n", encoding="utf-8")
    target = taken / below if below else taken
    argv = ["evaluate", "--spec", str(tmp_path / "spec.toml"), "--suite", "s", "--candidate", "c", option, str(target)]
    if option != "--out":
        argv += ["--out", str(tmp_path / "out")]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == EXIT_HARNESS_ERROR
    assert f"{option} {target}: {taken} is a file, not a directory" in err
    assert "Traceback" not in err


def test_rescore_refuses_a_file_as_out(tmp_path: Path, capsys):
    run = _scored_run(tmp_path)
    taken = tmp_path / "taken.md"
    taken.write_text("x\n", encoding="utf-8")
    code = main(["rescore", str(run), "--out", str(taken)])
    err = capsys.readouterr().err
    assert code == EXIT_HARNESS_ERROR
    assert f"--out {taken}: {taken} is a file, not a directory" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(("argv", "option", "given"), [
    (["evaluate", "--suite", "s", "--candidate", "c", "--batch-size", "0"], "--batch-size", "0"),
    (["serve", "--model", "m=dir", "--batch-size", "-2"], "--batch-size", "-2"),
    (["serve", "--model", "m=dir", "--default-max-tokens", "0"], "--default-max-tokens", "0"),
    (["serve", "--model", "m=dir", "--epochs", "three"], "--epochs", "'three'"),
])
def test_counts_below_one_are_usage_errors_naming_the_option(argv, option, given, capsys):
    from harness.cli import EXIT_USAGE

    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err
    assert info.value.code == EXIT_USAGE
    assert f"argument {option}: expected an integer of at least 1, got {given}" in err


def test_accepting_a_suite_the_run_has_no_results_for_is_a_usage_error(tmp_path: Path, capsys):
    from harness.cli import EXIT_USAGE

    run = _scored_run(tmp_path)
    baseline = tmp_path / "baseline.json"
    code = main(["baseline", "accept", "--results", str(run / "results.json"), "--baseline", str(baseline),
                 "--suite", "nosuch"])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE
    assert "--suite nosuch: no results in" in err and "(suites with results: mini)" in err
    assert not baseline.exists()


def test_a_missing_spec_names_both_ways_to_give_one(tmp_path: Path, capsys):
    code = main(["evaluate", "--spec", str(tmp_path / "nope.toml"), "--suite", "s", "--candidate", "c"])
    err = capsys.readouterr().err
    assert code == EXIT_HARNESS_ERROR
    assert f"{tmp_path / 'nope.toml'}: candidate spec not found (pass --spec" in err and "--ft-spec" in err

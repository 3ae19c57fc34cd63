"""`ft-harness baseline accept` refuses a run whose tests failed (other than by regression) unless
``--force``; `ft-harness rescore` gates a saved run against the baseline the run recorded and
exits 1 when it regressed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_gate import correctness, make_result

from harness.cli import EXIT_FINDINGS, EXIT_HARNESS_ERROR, EXIT_OK, main
from harness.gate import load_baseline, update_baseline
from harness.report import read_results
from harness.report.json_out import write_results_json
from harness.rescore import rescore_run
from harness.results import GateRecord, Problem, RunState

LABELS = "positive,negative"
IDS = [f"e{i:02d}" for i in range(20)]


# -- baseline accept -------------------------------------------------------------------------
def _results(tmp_path: Path, problems: list[Problem]) -> Path:
    state = RunState(results=[make_result(correctness(40, 0.8, 1), candidate="lora")], problems=problems)
    return write_results_json(state, tmp_path / "results.json")


@pytest.mark.parametrize("category", ["harness error", "failed check", "test error"])
def test_accept_refuses_a_run_with_failed_tests_naming_them(tmp_path: Path, category: str, capsys):
    failed = Problem("suites/test_sentiment.py::test_lora_beats_base", category, "assert 0.5 > 0.6")
    results = _results(tmp_path, [failed, Problem("suites/test_sentiment.py::test_gate[lora]", "regression",
                                                  "gate failed")])
    baseline = tmp_path / "baseline.json"
    args = ["baseline", "accept", "--results", str(results), "--baseline", str(baseline)]
    assert main(args) == EXIT_FINDINGS
    err = capsys.readouterr().err
    assert f"refused to update {baseline}" in err and "1 failed test(s)" in err
    assert f"[{category}] suites/test_sentiment.py::test_lora_beats_base: assert 0.5 > 0.6" in err
    assert "--force" in err and not baseline.exists()
    assert main([*args, "--force"]) == EXIT_OK
    assert set(load_baseline(baseline).entries) == {("sentiment", "lora")}


def test_accept_refuses_a_regressed_run_naming_each_regression_with_its_numbers(tmp_path: Path, capsys):
    from harness.gate import GateConfig, evaluate_gate
    from harness.gate.baseline import entry_from_result

    good = make_result([1.0] * 160 + [0.0] * 40, candidate="lora", ids=[f"e{i:03d}" for i in range(200)])
    broken = make_result([1.0] * 17 + [0.0] * 183, candidate="lora", ids=[f"e{i:03d}" for i in range(200)])
    entry = entry_from_result(good, versions={}, date="2025-01-01")
    records = evaluate_gate(broken, entry, GateConfig.from_mapping({"metrics": {"accuracy": {"tolerance": 0.02}}}))
    assert [r.verdict for r in records] == ["regressed"]
    state = RunState(results=[broken], gates=records,
                     problems=[Problem("suites/t.py::test_gate[lora]", "regression", "gate failed")])
    results = write_results_json(state, tmp_path / "results.json")
    baseline = tmp_path / "baseline.json"
    args = ["baseline", "accept", "--results", str(results), "--baseline", str(baseline)]
    assert main(args) == EXIT_FINDINGS
    err = capsys.readouterr().err
    assert f"refused to update {baseline}" in err and "1 regression(s)" in err
    assert "sentiment/lora accuracy regressed (0.800 → 0.085, paired Δ -0.715)" in err
    assert "--force" in err and not baseline.exists()
    assert main([*args, "--force"]) == EXIT_OK
    assert load_baseline(baseline).entries[("sentiment", "lora")].metrics["accuracy"].value == pytest.approx(0.085)


def test_accept_with_force_takes_a_run_whose_only_failures_are_regressions(tmp_path: Path, capsys):
    results = _results(tmp_path, [Problem("suites/t.py::test_gate[lora]", "regression", "gate failed")])
    baseline = tmp_path / "baseline.json"
    args = ["baseline", "accept", "--results", str(results), "--baseline", str(baseline)]
    assert main(args) == EXIT_FINDINGS
    assert "suites/t.py::test_gate[lora]: gate failed" in capsys.readouterr().err and not baseline.exists()
    assert main([*args, "--force"]) == EXIT_OK
    assert baseline.exists()


# -- rescore ---------------------------------------------------------------------------------
def _write_outputs(run: Path, right: set[str]) -> None:
    path = run / "outputs" / "mini" / "lora.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [{"id": i, "input": f"review {i}", "reference": "positive",
             "prediction": "positive" if i in right else "negative"} for i in IDS]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def _gated_run(tmp_path: Path, baseline: Path | None) -> Path:
    """A run folder whose lora got 5 of 20 right (the baseline has 20 of 20), as the run recorded it."""
    run = tmp_path / "run"
    _write_outputs(run, set(IDS[:5]))
    gate = GateRecord("mini", "lora", "accuracy", "regressed", 1.0, 0.25, "accuracy regressed")
    info = {"baseline_path": str(baseline)} if baseline is not None else {}
    write_results_json(RunState(gates=[gate], run_info=info), run / "results.json")
    return run


@pytest.fixture
def accepted(tmp_path: Path) -> Path:
    """A baseline (in a folder apart from the run) where lora got all 20 examples right."""
    good = tmp_path / "good"
    _write_outputs(good, set(IDS))
    state = rescore_run(good, task="classification", labels=LABELS.split(",")).state
    return Path(str(update_baseline(tmp_path / "elsewhere" / "baseline.json", state).path))


def test_rescore_gates_against_the_recorded_baseline_and_exits_1(tmp_path: Path, accepted: Path, capsys):
    run = _gated_run(tmp_path, accepted)
    assert not (run / "baseline.json").exists()
    outcome = rescore_run(run, task="classification", labels=LABELS.split(","))
    assert outcome.baseline == accepted
    assert [(g.metric, g.verdict) for g in outcome.state.gates] == [("accuracy", "regressed")]
    code = main(["rescore", str(run), "--task", "classification", "--labels", LABELS])
    out = capsys.readouterr().out
    assert code == EXIT_FINDINGS, out
    assert f"gated against {accepted}" in out and "FAILED: mini/lora accuracy regressed" in out
    assert "NOT GATED" not in (run / "rescored" / "index.md").read_text(encoding="utf-8")


def test_rescore_of_a_gated_run_whose_baseline_is_gone_is_an_error(tmp_path: Path, capsys):
    run = _gated_run(tmp_path, tmp_path / "gone" / "baseline.json")
    code = main(["rescore", str(run), "--task", "classification", "--labels", LABELS])
    err = capsys.readouterr().err
    assert code == EXIT_HARNESS_ERROR
    assert "the run was gated, but its baseline is not there" in err and str(tmp_path / "gone") in err


def test_rescore_of_a_run_never_gated_is_not_gated(tmp_path: Path, capsys):
    run = tmp_path / "run"
    _write_outputs(run, set(IDS[:5]))
    write_results_json(RunState(), run / "results.json")
    assert main(["rescore", str(run), "--task", "classification", "--labels", LABELS]) == EXIT_OK
    assert "gated against" not in capsys.readouterr().out
    assert read_results(run / "rescored" / "results.json").gates == []

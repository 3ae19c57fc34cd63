"""Training-data loss is loud: rows the trainer drops (every label masked) or truncates appear in
pytest's terminal summary and as a ⚠ line under the report's verdict; a suite's
``max_dropped_fraction`` / ``max_truncated_fraction`` fails the candidate before it trains."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import warm_python
from miniproject import FIXTURES, PYTEST_OPTIONS, make_project, read_results

from harness.errors import SpecError, TrainingError
from harness.report import write_reports
from harness.report.verdicts import data_loss_warning, suite_verdict
from harness.results import EvalResult, RunState
from harness.spec import load_spec
from harness.training.data_loss import DataLossLimits, check_data_loss
from harness.training.recipe import Prepared, Recipe, TrainingJob

WHERE = "spec.toml: suites.mini.candidates.lora"


# -- the spec keys ---------------------------------------------------------------------------
def _spec(tmp_path: Path, extra: str) -> Path:
    (tmp_path / "eval.jsonl").write_text((FIXTURES / "sentiment" / "eval.jsonl").read_text(encoding="utf-8"))
    path = tmp_path / "spec.toml"
    path.write_text(f'[suites.s]\ntask = "classification"\nlabels = ["positive", "negative"]\n'
                    f'eval = "eval.jsonl"\n{extra}\n', encoding="utf-8")
    return path


def test_limits_load_as_fractions(tmp_path: Path):
    suite = load_spec(_spec(tmp_path, "max_dropped_fraction = 0.05\nmax_truncated_fraction = 1")).suites["s"]
    assert (suite.max_dropped_fraction, suite.max_truncated_fraction) == (0.05, 1.0)
    plain = load_spec(_spec(tmp_path, "")).suites["s"]
    assert (plain.max_dropped_fraction, plain.max_truncated_fraction) == (None, None)


@pytest.mark.parametrize(("line", "expected"), [
    ("max_dropped_fraction = 1.5", "suites.s.max_dropped_fraction: expected a fraction of the train rows in [0, 1], got 1.5"),
    ("max_truncated_fraction = -0.1", "suites.s.max_truncated_fraction: expected a fraction"),
    ('max_dropped_fraction = "5%"', "suites.s.max_dropped_fraction"),
    ("max_dropped_fraction = true", "suites.s.max_dropped_fraction"),
    ("max_droped_fraction = 0.1", "max_droped_fraction"),
])
def test_a_bad_limit_fails_at_load_naming_file_and_key(tmp_path: Path, line: str, expected: str):
    path = _spec(tmp_path, line)
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert str(path) in str(caught.value) and expected in str(caught.value)


# -- the check -------------------------------------------------------------------------------
def test_the_check_names_candidate_counts_and_key_and_allows_the_limit_itself():
    limits = DataLossLimits(WHERE, max_dropped_fraction=0.1, max_truncated_fraction=0.25)
    check_data_loss(limits, rows=20, dropped=2, truncated=5, max_length=64)  # exactly at both limits
    check_data_loss(None, rows=20, dropped=20, truncated=20)
    with pytest.raises(TrainingError) as dropped:
        check_data_loss(limits, rows=20, dropped=3, truncated=0, max_length=64)
    assert str(dropped.value).startswith(f"{WHERE}: 3 of 20 training rows (15.0%) would be dropped")
    assert "max_dropped_fraction = 0.1 (spec.toml: suites.mini.max_dropped_fraction)" in str(dropped.value)
    with pytest.raises(TrainingError, match=r"6 of 20 training rows \(30\.0%\) would be truncated at max_length 64, "
                                            r"more than max_truncated_fraction = 0\.25"):
        check_data_loss(limits, rows=20, dropped=0, truncated=6, max_length=64)


class _Trainer:
    train_dataset = tuple(range(18))  # the trainer kept 18 of 20 rows

    def train(self):
        raise AssertionError("training started")


def test_the_limit_is_checked_before_training_starts():
    from harness.data.records import Example, Split

    examples = [Example(id=f"r{i}", messages=[{"role": "user", "content": "x"},
                                               {"role": "assistant", "content": "y"}]) for i in range(20)]
    split = Split(name="train", path="train.jsonl", examples=examples, fingerprint="f")
    recipe = Recipe("lora", "LoRA", "adapter", {}, prepare=lambda job, out, ckpt: Prepared(_Trainer(), None),
                    save=lambda prepared, out: None)
    job = TrainingJob(Path("."), split, None, {"max_length": 32}, limits=DataLossLimits(WHERE, 0.05))
    with pytest.raises(TrainingError, match=r"2 of 20 training rows \(10\.0%\) would be dropped"):
        recipe.fit(job, Path("."))  # the trainer's own filtering counts: 20 rows in, 18 kept


# -- the report ------------------------------------------------------------------------------
def _result(candidate: str, training: dict | None) -> EvalResult:
    return EvalResult("mini", candidate, "lora", "f" * 64, "classification", "eval", "s" * 64, ["a"], ["x"],
                      ["positive"], ["positive"], {"accuracy": 1.0}, {"correct": [1.0]}, training=training)


TRAINED = {"rows_dropped": 12, "rows_truncated": 40, "train_rows": 115, "hyperparameters": {"max_length": 1024}}


def test_the_warning_line_reads_counts_of_the_train_rows():
    assert data_loss_warning(_result("lora", TRAINED)) == (
        "mini/lora: 12 of 115 training rows dropped (all labels masked), 40 truncated to max_length 1024")
    truncated = {**TRAINED, "rows_dropped": 0}
    assert data_loss_warning(_result("lora", truncated)) == "mini/lora: 40 of 115 training rows truncated to max_length 1024"
    assert data_loss_warning(_result("lora", {**TRAINED, "rows_dropped": 0, "rows_truncated": 0})) is None
    assert data_loss_warning(_result("base", None)) is None


def test_the_report_shows_the_warning_under_the_verdict(tmp_path: Path):
    state = RunState(results=[_result("base", None), _result("lora", TRAINED)])
    assert suite_verdict(state, "mini").warnings == (
        "⚠ mini/lora: 12 of 115 training rows dropped (all labels masked), 40 truncated to max_length 1024",)
    write_reports(state, tmp_path)
    lines = (tmp_path / "mini.md").read_text(encoding="utf-8").splitlines()
    verdict = next(i for i, line in enumerate(lines) if line.startswith("**"))
    assert lines[verdict + 2] == suite_verdict(state, "mini").warnings[0]


# -- through pytest --------------------------------------------------------------------------
LONG = " ".join(["the film drags on and on without any point at all"] * 40)


def _train_with_long_rows() -> str:
    rows = (FIXTURES / "sentiment" / "train.jsonl").read_text(encoding="utf-8").splitlines()[:36]
    long = [json.dumps({"messages": [{"role": "user", "content": f"Review: {LONG} {i}"},
                                     {"role": "assistant", "content": "negative"}]}) for i in range(4)]
    return "\n".join(rows + long) + "\n"


def _run(project: Path, cache: Path, *args: str) -> subprocess.CompletedProcess:
    command = ["-m", "pytest", str(project / "test_mini.py"), *PYTEST_OPTIONS,
               "--rootdir", str(project), "--ft-spec", str(project / "candidates.toml"),
               "--ft-cache-dir", str(cache), "--ft-reports-dir", str(project / "reports"), *args]
    return warm_python.run(command, cwd=project, timeout=600)


@pytest.mark.slow
def test_dropped_rows_are_in_the_terminal_summary_and_a_limit_fails_before_training(tmp_path: Path):
    project, cache = tmp_path / "p", tmp_path / "cache"
    spec = make_project(project, train_text=_train_with_long_rows())
    text = spec.read_text(encoding="utf-8").replace("r = 4, alpha = 8 }", "r = 4, alpha = 8, max_length = 160 }")
    spec.write_text(text, encoding="utf-8")
    (project / "test_mini.py").write_text(
        'import pytest\n\npytestmark = pytest.mark.ft_suite("mini")\n\n\n'
        'def test_lora(evaluate):\n    evaluate("lora")\n', encoding="utf-8")

    done = _run(project, cache)
    assert done.returncode == 0, done.stdout + done.stderr
    training = read_results(project / "reports")["results"][0]["training"]
    assert training["train_rows"] == 40 and (training["rows_dropped"], training["rows_truncated"]) == (4, 4)
    line = (f"⚠ mini/lora: 4 of 40 training rows dropped (all labels masked), {training['rows_truncated']} "
            "truncated to max_length 160")
    assert line in done.stdout.split("= ft-harness =")[-1]
    assert line in (project / "reports" / "mini.md").read_text(encoding="utf-8")

    spec.write_text(text.replace('eval = "eval.jsonl"', 'eval = "eval.jsonl"\nmax_dropped_fraction = 0.05'),
                    encoding="utf-8")
    for cache_dir in (cache, tmp_path / "cold"):  # the cached model is refused too: a warm run agrees
        limited = _run(project, cache_dir)
        out = limited.stdout + limited.stderr
        assert limited.returncode == pytest.ExitCode.TESTS_FAILED, out
        assert f"TrainingError: {spec}: suites.mini.candidates.lora: 4 of 40 training rows (10.0%) would be " \
               "dropped (every label masked) at max_length 160, more than max_dropped_fraction = 0.05" in out
        assert "[harness error]" in out
    assert "nothing was trained" in out and not list((tmp_path / "cold").glob("**/adapter_model.safetensors"))

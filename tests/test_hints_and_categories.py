"""Messages name the run's own paths: the hints to accept a baseline, followed literally, accept the
file the run gated against; a suite's own assertion that fails is a *failed check*, not a *test
error* (the bucket for broken test code) and not a *regression* (the gate)."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import warm_python
from miniproject import PYTEST_OPTIONS, make_project, read_results

from harness.gate.failure import UPDATE_COMMANDS, update_commands

GATE_ONLY = '''
import pytest

pytestmark = pytest.mark.ft_suite("mini")


def test_gate_base(evaluate, gate):
    gate(evaluate("base"))
'''

WITH_CHECKS = GATE_ONLY + '''

def test_base_beats_itself(evaluate, compare):
    result = compare(evaluate("base"), evaluate("base"), metric="accuracy")
    assert result.mean_b > result.mean_a, "the fine-tune is worse than base"


def test_broken_code(evaluate):
    evaluate("base").no_such_attribute
'''


def test_default_paths_give_the_plain_commands(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    commands = update_commands(tmp_path / "fixtures/candidates.toml", tmp_path / "reports", None,
                               root_dir=tmp_path, defaults=("fixtures/candidates.toml", "reports"))
    assert commands == UPDATE_COMMANDS


def test_given_paths_are_in_both_commands(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run, accept = update_commands(tmp_path / "specs/my spec.toml", tmp_path / "out", tmp_path / "gate/b.json",
                                  root_dir=tmp_path, defaults=("fixtures/candidates.toml", "reports"))
    assert run == ("pytest suites/ --ft-spec 'specs/my spec.toml' --ft-reports-dir out --ft-baseline gate/b.json "
                   "--ft-update-baseline")
    assert accept == "ft-harness baseline accept --results out/results.json --baseline gate/b.json"
    elsewhere = tmp_path.parent / "other" / "b.json"
    _, accept = update_commands(tmp_path / "fixtures/candidates.toml", tmp_path / "reports", elsewhere,
                                root_dir=tmp_path, defaults=("fixtures/candidates.toml", "reports"))
    assert accept == f"ft-harness baseline accept --baseline {elsewhere.as_posix()}"


def _run(project: Path, cache: Path, suite: str) -> subprocess.CompletedProcess:
    (project / "test_mini.py").write_text(suite, encoding="utf-8")
    command = ["-m", "pytest", "test_mini.py", *PYTEST_OPTIONS, "--rootdir", str(project),
               "--ft-spec", "candidates.toml", "--ft-cache-dir", str(cache), "--ft-reports-dir", "out",
               "--ft-baseline", "gate/base.json"]
    return warm_python.run(command, cwd=project, timeout=600)


@pytest.mark.slow
def test_hints_name_the_given_paths_and_suite_assertions_are_failed_checks(tmp_path: Path, session_cache: Path):
    project, cache = tmp_path / "p", session_cache
    make_project(project)
    expected_run = ("pytest suites/ --ft-spec candidates.toml --ft-reports-dir out --ft-baseline gate/base.json "
                    "--ft-update-baseline")
    expected_accept = "ft-harness baseline accept --results out/results.json --baseline gate/base.json"

    first = _run(project, cache, GATE_ONLY)  # no baseline yet: the report says how to accept this run
    assert first.returncode == 0, first.stdout + first.stderr
    note = (project / "out" / "index.md").read_text(encoding="utf-8")
    assert f"`{expected_run}`" in note and f"`{expected_accept}`" in note
    accept = shlex.split(re.search(r"`(ft-harness baseline accept[^`]*)`", note).group(1))
    done = warm_python.run(["-m", "harness", *accept[1:]], cwd=project, timeout=120)  # the hint, followed literally
    assert done.returncode == 0, done.stdout + done.stderr
    baseline = project / "gate" / "base.json"
    data = json.loads(baseline.read_text(encoding="utf-8"))
    data["suites"]["mini"]["base"]["metrics"]["accuracy"]["value"] = 1.0  # a demanded floor the base misses
    baseline.write_text(json.dumps(data), encoding="utf-8")

    second = _run(project, cache, WITH_CHECKS)
    out = second.stdout + second.stderr
    assert second.returncode == pytest.ExitCode.TESTS_FAILED, out
    assert expected_run in out and expected_accept in out
    categories = {p["nodeid"].rsplit("::", 1)[-1]: p["category"] for p in read_results(project / "out")["problems"]}
    assert categories == {"test_gate_base": "regression", "test_base_beats_itself": "failed check",
                          "test_broken_code": "test error"}
    summary = second.stdout.split("= ft-harness =")[-1]
    assert "failures: 1 failed check, 1 regression, 1 test error" in summary
    assert "[failed check] test_mini.py::test_base_beats_itself: the fine-tune is worse than base" in summary
    page = (project / "out" / "mini.md").read_text(encoding="utf-8")
    assert "| failed check | test_mini.py::test_base_beats_itself" in page

"""Through pytest itself: a run that did not complete never writes the baseline; harness errors
read as the user's problem (no harness traceback); bad ``--ft-*`` values are usage errors."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import warm_python
from miniproject import PYTEST_OPTIONS, make_project

BASE_ONLY = '''
import pytest

pytestmark = pytest.mark.ft_suite("mini")


def test_base(evaluate, gate):
    gate(evaluate("base"))
'''

INTERRUPTED = BASE_ONLY + '''

def test_ctrl_c():
    raise KeyboardInterrupt


def test_never_reached(evaluate):
    evaluate("base")
'''

STOPPED = BASE_ONLY + '''

def test_fails():
    assert False, "an ordinary failure"


def test_not_run_after_x(evaluate):
    evaluate("base")
'''

SPEC_ERRORS = '''
import pytest


@pytest.fixture
def missing_model(candidate):
    return candidate("no_such_candidate")


@pytest.mark.ft_suite("mini")
def test_unknown_candidate_in_a_fixture(missing_model):
    pass


@pytest.mark.ft_suite("nope")
def test_unknown_suite(evaluate):
    evaluate("base")
'''

HARNESS_SOURCE = re.compile(r"harness[/\\][\w/\\]+\.py")


@pytest.fixture
def shared_cache(session_cache) -> Path:
    return session_cache


def run_suite(project: Path, cache: Path, suite: str, *args: str) -> subprocess.CompletedProcess:
    (project / "test_mini.py").write_text(suite, encoding="utf-8")
    command = ["-m", "pytest", str(project / "test_mini.py"), *PYTEST_OPTIONS,
               "--rootdir", str(project), "--ft-spec", str(project / "candidates.toml"),
               "--ft-cache-dir", str(cache), "--ft-reports-dir", str(project / "reports"), *args]
    return warm_python.run(command, cwd=project, timeout=600)


@pytest.mark.slow
def test_an_interrupted_or_stopped_update_never_writes_the_baseline(tmp_path: Path, shared_cache: Path):
    project = tmp_path / "p"
    make_project(project)
    baseline = project / "reports" / "baseline.json"

    interrupted = run_suite(project, shared_cache, INTERRUPTED, "--ft-update-baseline")
    assert interrupted.returncode == pytest.ExitCode.INTERRUPTED, interrupted.stdout + interrupted.stderr
    assert not baseline.exists()
    assert "baseline NOT updated: the run was interrupted" in interrupted.stdout
    results = json.loads((project / "reports" / "results.json").read_text(encoding="utf-8"))
    assert [r["candidate"] for r in results["state"]["results"]] == ["base"]  # the report still says what ran
    accept = warm_python.run(["-m", "harness", "baseline", "accept", "--results",
                              str(project / "reports" / "results.json"), "--baseline", str(baseline)], timeout=120)
    assert accept.returncode == 1 and "did not complete (the run was interrupted)" in accept.stderr
    assert not baseline.exists()  # nor through `ft-harness baseline accept`

    stopped = run_suite(project, shared_cache, STOPPED, "--ft-update-baseline", "-x")
    assert stopped.returncode == pytest.ExitCode.TESTS_FAILED
    assert not baseline.exists()
    assert "baseline NOT updated: 1 of 3 test(s) did not run" in stopped.stdout

    complete = run_suite(project, shared_cache, BASE_ONLY, "--ft-update-baseline")  # the control
    assert complete.returncode == 0, complete.stdout + complete.stderr
    written = baseline.read_bytes()
    assert json.loads(written)["suites"]["mini"]["base"]["metrics"]["accuracy"]["n"] == 40

    again = run_suite(project, shared_cache, INTERRUPTED, "--ft-update-baseline")
    assert again.returncode == pytest.ExitCode.INTERRUPTED
    assert baseline.read_bytes() == written  # not rewritten, not even its date


@pytest.mark.slow
def test_harness_errors_in_fixtures_show_the_message_and_no_harness_traceback(tmp_path: Path, shared_cache: Path):
    project = tmp_path / "errors"
    spec = make_project(project)
    done = run_suite(project, shared_cache, SPEC_ERRORS, "-rA")
    out = done.stdout + done.stderr
    assert done.returncode == pytest.ExitCode.TESTS_FAILED, out
    assert "2 error" in out
    assert f"SpecError: {spec}: no suite 'nope' (declared: mini)" in out
    assert "no_such_candidate" in out and str(spec) in out
    assert not HARNESS_SOURCE.findall(out), HARNESS_SOURCE.findall(out)
    assert "Traceback" not in out and "raise " not in out
    assert "[harness error]" in out  # still classified in the terminal summary


@pytest.mark.parametrize(("flag", "value", "expected"), [
    ("--ft-batch-size", "0", "--ft-batch-size: expected an integer of at least 1, got 0"),
    ("--ft-batch-size", "-3", "--ft-batch-size: expected an integer of at least 1, got -3"),
    ("--ft-repeat", "0", "--ft-repeat: expected an integer of at least 1, got 0"),
    ("--ft-repeat", "-1", "--ft-repeat: expected an integer of at least 1, got -1"),
    ("--ft-openai-max-cost", "-2", "--ft-openai-max-cost: expected a finite number of US dollars, 0 or more"),
])
def test_bad_option_values_are_usage_errors_naming_the_flag(tmp_path: Path, flag: str, value: str, expected: str):
    (tmp_path / "test_nothing.py").write_text("def test_nothing():\n    pass\n", encoding="utf-8")
    done = warm_python.run(["-m", "pytest", str(tmp_path / "test_nothing.py"), *PYTEST_OPTIONS,
                            "--rootdir", str(tmp_path), flag, value], cwd=tmp_path, timeout=120)
    assert done.returncode == pytest.ExitCode.USAGE_ERROR
    assert expected in done.stderr
    assert "Traceback" not in done.stderr

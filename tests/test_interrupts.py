"""Ctrl-C always aborts a baseline update, ends quickly with a short "interrupted" report and never
leaves the reports of two runs mixed: SIGINT at 50 random points of the end of a run (rendering,
baseline write, publishing), inside a training callback, during report rendering, and one that a
finalizer swallows. After the short report, the process leaves through the fast exit (exit handlers
run, pytest's final clean-ups and the interpreter's teardown skipped); a complete run never does,
and neither do the command-line entry points unless run as the program."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import warm_python
from miniproject import make_project

from harness import interrupts
from harness.report import read_results
from harness.report.publish import MANIFEST
from harness.results import RunState
from harness.session import EvalSession, SessionOptions

SUITE = '''
import pytest

pytestmark = pytest.mark.ft_suite("mini")


@pytest.mark.parametrize("name", ["base", "lora"])
def test_gate(name, evaluate, gate):
    gate(evaluate(name))
'''

# A conftest that sends this very process SIGINT at a chosen point (no sleeps, no races): in the
# second training step's callback, or as the reports start rendering. It writes when it did.
CONFTEST = '''
import atexit, os, signal, time
from pathlib import Path

WHERE = os.environ.get("FT_TEST_SIGINT")
STAMP = Path(os.environ.get("FT_TEST_STAMP", "stamp"))
MARKS = os.environ.get("FT_TEST_MARKS")  # a folder: which exit steps ran, one file each


def _mark(step):
    Path(MARKS, step).write_text(repr(time.time()))


if MARKS:  # exit handlers and every unconfigure hook run on either exit; pytest's clean-up stack
    # only on the normal way out
    import pytest

    atexit.register(_mark, "atexit")

    def pytest_configure(config):
        config.add_cleanup(lambda: _mark("pytest-cleanup"))

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(config):
        _mark("unconfigure")


def _interrupt():
    STAMP.write_text(repr(time.time()))
    os.kill(os.getpid(), signal.SIGINT)


if WHERE == "training":  # patched where the LoRA recipe looks it up
    import harness.backends.hf.lora as lora
    from transformers import TrainerCallback

    original = lora.training_callbacks

    class _AtStep2(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 2:
                _interrupt()

    lora.training_callbacks = lambda *a, **k: [*original(*a, **k), _AtStep2()]
elif WHERE == "rendering":  # patched where the session looks it up
    import harness.session as session

    render = session.write_reports

    def write_reports(*args, **kwargs):
        _interrupt()
        return render(*args, **kwargs)

    session.write_reports = write_reports
elif WHERE == "swallowed":
    class _Swallowed:
        def __del__(self):  # a KeyboardInterrupt raised here is printed and dropped by Python
            _interrupt()

    def pytest_runtest_call(item):
        if item.name.endswith("[lora]"):
            _Swallowed()
'''


def _run(project: Path, cache: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    command = ["-m", "pytest", "test_mini.py", "-p", "no:cacheprovider", "--rootdir",
               str(project), "--ft-spec", "candidates.toml", "--ft-cache-dir", str(cache),
               "--ft-reports-dir", "reports", "--ft-update-baseline", *args]
    return warm_python.run(command, cwd=project, timeout=600, env={**os.environ, **(env or {})}, default_sigint=True)


def _marks(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


@pytest.fixture(scope="module")
def accepted(tmp_path_factory, session_cache) -> tuple[Path, Path]:
    """A mini project whose complete run wrote the baseline and the reports (its base and LoRA from
    the test run's shared cache; the interrupted training below trains a LoRA of its own)."""
    root = tmp_path_factory.mktemp("interrupts")
    project, cache, marks = root / "p", session_cache, root / "marks"
    make_project(project)
    marks.mkdir()
    (project / "test_mini.py").write_text(SUITE, encoding="utf-8")
    (project / "conftest.py").write_text(CONFTEST, encoding="utf-8")
    done = _run(project, cache, env={"FT_TEST_MARKS": str(marks)})
    assert done.returncode == 0, done.stdout + done.stderr
    assert _marks(marks) == {"atexit", "unconfigure", "pytest-cleanup"}  # a complete run leaves the normal way
    return project, cache


def _copy(project: Path, to: Path) -> Path:
    shutil.copytree(project, to, ignore=shutil.ignore_patterns("__pycache__"))
    return to


def _assert_interrupted_cleanly(done: subprocess.CompletedProcess, reports: Path, baseline_before: bytes) -> None:
    out = done.stdout + done.stderr
    assert done.returncode in (2, 130), out
    assert "Traceback (most recent call last)" not in out, out
    assert (reports / "baseline.json").read_bytes() == baseline_before
    index = (reports / "index.md").read_text(encoding="utf-8")
    assert index.startswith("# ft-harness: run interrupted"), index
    assert not list(reports.glob("mini*.md")) and not list(reports.glob("*.png"))  # no page of the old run
    assert read_results(reports / "results.json").run_info["incomplete"] == "the run was interrupted"


@pytest.mark.slow
@pytest.mark.parametrize("where", ["training", "rendering", "swallowed"])
def test_a_ctrl_c_aborts_the_update_and_leaves_one_run_of_reports(accepted, tmp_path, where):
    project = _copy(accepted[0], tmp_path / "p")
    if where == "training":  # a candidate that trains afresh, so the interrupt lands in its callbacks
        spec = project / "candidates.toml"
        spec.write_text(spec.read_text().replace("n_epochs = 1,", "n_epochs = 2,"), encoding="utf-8")
    before = (project / "reports" / "baseline.json").read_bytes()
    stamp, marks = tmp_path / "stamp", tmp_path / "marks"
    marks.mkdir()
    # pytest shows the swallowed exception's own traceback as a warning: not the harness's, left out
    quiet = ["-W", "ignore::pytest.PytestUnraisableExceptionWarning"] if where == "swallowed" else []
    done = _run(project, accepted[1], "--junitxml", str(tmp_path / "junit.xml"), *quiet,
                env={"FT_TEST_SIGINT": where, "FT_TEST_STAMP": str(stamp), "FT_TEST_MARKS": str(marks)})
    ended = time.time()
    _assert_interrupted_cleanly(done, project / "reports", before)
    # the fast exit: every unconfigure hook and the exit handlers ran, pytest's clean-up stack (its
    # gc passes) did not; what the run writes at session finish is there, the summary was printed
    assert _marks(marks) == {"atexit", "unconfigure"}, done.stdout + done.stderr
    assert "<testsuite" in (tmp_path / "junit.xml").read_text(encoding="utf-8")
    assert "reports: " in done.stdout, done.stdout
    seconds = ended - float(stamp.read_text())
    print(f"SIGINT {where}: exited {seconds:.2f} s after the signal")  # measured, not asserted
    if where == "swallowed":  # it was swallowed: the run stopped at the next evaluation, lora's
        assert "1 passed" in done.stdout, done.stdout
        evaluated = read_results(project / "reports" / "results.json").results
        assert [r.candidate for r in evaluated] == ["base"]


class _Points:
    """Counts calls of the functions the end of a run goes through; sends SIGINT at call ``fire``."""

    # patched where they are looked up: the session imports them by name
    TARGETS = (("os", "replace"), ("harness.session", "write_reports"), ("harness.session", "write_outputs"),
               ("harness.session", "update_baseline"), ("harness.session", "publish"),
               ("harness.session", "staging_dir"), ("harness.report.publish", "_replace_previous"),
               ("harness.session", "write_interrupted"), ("matplotlib.figure", "Figure.savefig"))

    def __init__(self, monkeypatch, fire: int | None, baseline: Path) -> None:
        import importlib

        self.calls, self.fire, self.baseline, self.baseline_written_at = 0, fire, baseline, None
        self.replace = os.replace
        for module_name, attribute in self.TARGETS:
            owner = importlib.import_module(module_name)
            *path, name = attribute.split(".")
            for part in path:
                owner = getattr(owner, part)
            monkeypatch.setattr(owner, name, self._wrap(getattr(owner, name)))

    def _wrap(self, function):
        def counted(*args, **kwargs):
            self.calls += 1
            if self.calls == self.fire:
                signal.raise_signal(signal.SIGINT)
            if function is self.replace and Path(args[1]) == self.baseline and self.baseline_written_at is None:
                self.baseline_written_at = self.calls
            return function(*args, **kwargs)

        return counted


def _finish(reports: Path, results: list, patch, fire: int | None) -> tuple[EvalSession, _Points]:
    """The end of a complete run with ``--ft-update-baseline`` over ``results``, SIGINT at call ``fire``."""
    options = SessionOptions(spec_path=reports.parent / "candidates.toml", root_dir=reports.parent,
                             reports_dir=reports, baseline_path=reports / "baseline.json", update_baseline=True)
    session = EvalSession(options)
    session.state = RunState(results=list(results))
    points = _Points(patch, fire, reports / "baseline.json")
    session.finish(0)
    return session, points


def _read_or_none(path: Path) -> bytes | None:
    return path.read_bytes() if path.exists() else None


def test_sigint_at_50_points_of_a_baseline_update(accepted, tmp_path, monkeypatch):
    reports = accepted[0] / "reports"
    state = read_results(reports / "results.json")
    for result in state.results:  # a run whose scores differ, so the update would change the file
        result.training = None  # no loss-curve plot: half the rendering time, the same kinds of points
        result.predictions = ["negative" if p == "positive" else "positive" for p in result.predictions]
        result.per_example = {k: [1.0 - v for v in values] for k, values in result.per_example.items()}
    old = (reports / "baseline.json").read_bytes()
    history_before = _read_or_none(reports / "history.jsonl")
    ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # a test run started as a background job
    if ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # Python's own handler, as at a terminal
    installed_here = interrupts.install()  # the plugin has installed it already in a pytest process
    assert interrupts.active()
    try:
        dry = tmp_path / "dry" / "reports"
        shutil.copytree(reports, dry)
        with monkeypatch.context() as patch:
            session, points = _finish(dry, state.results, patch, None)
        assert not session.interrupted and points.baseline_written_at is not None
        new = (dry / "baseline.json").read_bytes()
        assert new != old
        total = points.calls
        for attempt, fire in enumerate(sorted(random.Random(25).choices(range(1, total + 1), k=50))):
            interrupts.reset()
            copy = tmp_path / f"run{attempt}" / "reports"
            shutil.copytree(reports, copy)
            with monkeypatch.context() as patch:
                session, points = _finish(copy, state.results, patch, fire)
            assert session.interrupted, fire  # ends as interrupted: exit 2
            written = copy / "baseline.json"
            if points.baseline_written_at is None or fire < points.baseline_written_at:
                assert written.read_bytes() == old, fire
            else:
                assert written.read_bytes() == new, fire
            index = (copy / "index.md").read_text(encoding="utf-8")
            listed = json.loads((copy / MANIFEST).read_text(encoding="utf-8"))
            if written.read_bytes() == old:  # history.jsonl beside it is appended only after the baseline
                assert _read_or_none(copy / "history.jsonl") == history_before, fire
            on_disk = sorted(p.relative_to(copy).as_posix() for p in copy.rglob("*")
                             if p.is_file() and p.name not in (MANIFEST, "baseline.json", "history.jsonl"))
            assert on_disk == sorted(listed), fire  # one run's files, nothing of the other
            if index.startswith("# ft-harness: run interrupted"):
                assert not any(name.endswith((".png", ".html")) for name in on_disk), fire
            assert not list(copy.glob(".ft-staging-*")), fire
            shutil.rmtree(copy.parent)
    finally:
        if installed_here:
            interrupts.uninstall()
        interrupts.reset()
        if ignored:
            signal.signal(signal.SIGINT, signal.SIG_IGN)


# An object alive until the interpreter tears down writes "teardown" from __del__; a non-daemon thread
# and an exit handler write theirs; then the script ends the way ``EXIT`` says.
EXIT_SCRIPT = '''
import atexit, sys, threading, time
from pathlib import Path

MARKS = Path(sys.argv[1])


class Torn:
    def __del__(self):
        (MARKS / "teardown").write_text("x")


kept = Torn()
atexit.register(lambda: (MARKS / "atexit").write_text("x"))


def late():
    time.sleep(0.2)
    (MARKS / "thread").write_text("x")


threading.Thread(target=late).start()
print("buffered, not yet flushed", end="")
{EXIT}
'''


def _script(tmp_path: Path, exit_line: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    marks = tmp_path / "marks"
    marks.mkdir(parents=True)
    done = subprocess.run([sys.executable, "-c", EXIT_SCRIPT.replace("{EXIT}", exit_line), str(marks)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    return done, _marks(marks)


def test_exit_now_runs_the_exit_steps_and_skips_the_teardown(tmp_path):
    done, marks = _script(tmp_path / "normal", "sys.exit(130)")
    assert (done.returncode, marks) == (130, {"atexit", "thread", "teardown"})  # what the markers tell apart
    done, marks = _script(tmp_path / "fast", "from harness import interrupts\ninterrupts.exit_now(130)")
    assert done.returncode == 130, done.stderr
    assert done.stdout == "buffered, not yet flushed"
    assert marks == {"atexit", "thread"}  # threads waited for, exit handlers run, no teardown


CLI_SCRIPT = '''
import argparse, sys
import harness.cli as cli


def interrupted(args):
    raise KeyboardInterrupt


class Parser:
    def parse_args(self, argv):
        return argparse.Namespace(func=interrupted)


cli.build_parser = Parser
{EXIT}
'''


def test_the_command_line_exits_130_at_once_when_interrupted(tmp_path):
    done, marks = _script(tmp_path / "program", CLI_SCRIPT.replace("{EXIT}", "sys.exit(cli.main())"))
    assert done.returncode == 130 and "ft-harness: interrupted" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert marks == {"atexit", "thread"}  # left through the fast exit
    # called from Python code with arguments, main() returns the code and the caller goes on
    done, marks = _script(tmp_path / "called", CLI_SCRIPT.replace("{EXIT}", "print(cli.main(['x']))"))
    assert done.returncode == 0 and done.stdout.endswith("130\n"), done.stdout + done.stderr
    assert marks == {"atexit", "thread", "teardown"}

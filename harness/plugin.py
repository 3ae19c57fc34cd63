"""pytest plugin: ``--ft-*`` options, the suite fixtures and failure classification.

The work is the evaluation session's (:mod:`harness.session`): ``pytest_configure`` makes one
from the typed options, stores it under :data:`SESSION_KEY` and registers it as a plugin (as
pytest's own junitxml does). Suites ask for candidates by name through fixtures; the session
builds (trains or loads) each candidate once, evaluates it once, and at session finish writes
the reports (and, with ``--ft-update-baseline`` and only when every test ran, the baseline).
Harness errors are shown as their message alone. Heavy libraries load only when a fixture is used.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest

from harness import heap, interrupts
from harness.errors import HarnessError
from harness.gate import GateFailure
from harness.gate.failure import record_line
from harness.report import github_annotations, junit_properties
from harness.report.verdicts import data_loss_warnings
from harness.results import EvalResult, Problem, RunState
from harness.secrets import install_log_redaction
from harness.session import (
    DEFAULT_REPORTS,
    DEFAULT_SPEC,
    EvalSession,
    OptionError,
    SessionOptions,
    offline_for_local_base,
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ft-harness", "fine-tuned model evaluation (ft-harness)")
    group.addoption("--ft-spec", default=None, help=f"candidate spec TOML (default: ini ft_spec or {DEFAULT_SPEC})")
    group.addoption("--ft-base-model", default=None,
                    help="base model: 'embedded', a local directory or a hub id (overrides the spec)")
    group.addoption("--ft-cache-dir", default=None, help="artifact cache folder (default: $FT_HARNESS_CACHE or .ft-cache)")
    group.addoption("--ft-no-cache", action="store_true", help="build and evaluate everything afresh, touch no cache")
    group.addoption("--ft-reports-dir", default=None, help=f"where reports go (default: {DEFAULT_REPORTS}/)")
    group.addoption("--ft-baseline", default=None, help="baseline file (default: <reports>/baseline.json)")
    group.addoption("--ft-update-baseline", action="store_true",
                    help="write this run's results into the baseline instead of gating against it")
    group.addoption("--ft-force", action="store_true",
                    help="with --ft-update-baseline: overwrite entries whose eval set changed")
    group.addoption("--ft-strict", action="store_true",
                    help="fail gated metrics that have no baseline or a non-comparable one")
    group.addoption("--ft-encoder-model", default=None,
                    help="encoder for sequence-classification candidates: 'minilm', a local directory or a "
                         "hub id (overrides the spec and $FT_ENCODER_MODEL)")
    group.addoption("--ft-batch-size", type=int, default=None, help="evaluation batch size")
    group.addoption("--ft-repeat", type=int, default=1, help="evaluate each candidate N times and report the spread")
    group.addoption("--ft-openai-max-cost", type=float, default=None,
                    help="refuse to start an OpenAI fine-tuning job whose estimated cost exceeds this (USD)")
    group.addoption("--ft-mlflow", nargs="?", const="", default=None, metavar="TRACKING_URI",
                    help="log the run to MLflow: one run per suite, a nested run per candidate (default store: "
                         "sqlite in the reports folder; an unreachable server falls back to it with a warning)")
    group.addoption("--ft-mlflow-log-model", action="store_true",
                    help="with --ft-mlflow: log each candidate's trained adapter directory as an MLflow model")
    parser.addini("ft_spec", "candidate spec TOML, relative to the rootdir", default=DEFAULT_SPEC)
    parser.addini("ft_reports_dir", "reports folder, relative to the rootdir", default=DEFAULT_REPORTS)


_FLAGS = {"spec_path": "--ft-spec", "base_model": "--ft-base-model", "cache_dir": "--ft-cache-dir",
          "reports_dir": "--ft-reports-dir", "baseline_path": "--ft-baseline", "batch_size": "--ft-batch-size",
          "repeat": "--ft-repeat", "encoder_model": "--ft-encoder-model",
          "openai_max_cost": "--ft-openai-max-cost", "mlflow": "--ft-mlflow"}


def session_options(config: pytest.Config) -> SessionOptions:
    """The session's typed options from the ``--ft-*`` command line and ini settings.

    One rule for paths: a path given on the command line resolves against the directory pytest was
    started in (as any command resolves its arguments); an ini setting (``ft_spec``,
    ``ft_reports_dir``) and the defaults resolve against pytest's rootdir.
    """
    root = Path(config.rootpath)
    invoked = Path(config.invocation_params.dir)

    def command_line(option: str) -> Path | None:
        given = config.getoption(option)
        if not given:
            return None
        path = Path(given).expanduser()
        return path if path.is_absolute() else invoked / path

    def under_root(option: str, ini: str) -> Path:
        given = command_line(option)
        if given is not None:
            return given
        path = Path(config.getini(ini))
        return path if path.is_absolute() else root / path

    def given(option: str) -> Any:
        return config.getoption(option)

    try:
        return SessionOptions(
            spec_path=under_root("--ft-spec", "ft_spec"), root_dir=root,
            base_model=given("--ft-base-model"),
            cache_dir=command_line("--ft-cache-dir"),
            no_cache=bool(given("--ft-no-cache")), batch_size=given("--ft-batch-size"),
            repeat=given("--ft-repeat"), reports_dir=under_root("--ft-reports-dir", "ft_reports_dir"),
            baseline_path=command_line("--ft-baseline"),
            update_baseline=bool(given("--ft-update-baseline")), force=bool(given("--ft-force")),
            strict=bool(given("--ft-strict")), encoder_model=given("--ft-encoder-model"),
            openai_max_cost=given("--ft-openai-max-cost"), mlflow=given("--ft-mlflow"),
            mlflow_log_model=bool(given("--ft-mlflow-log-model")),
            # progress bars only where the user sees them: not captured, not -q
            progress=given("capture") == "no" and given("verbose") >= 0,
        )
    except OptionError as exc:
        flag = _FLAGS.get(exc.option, exc.option)
        raise pytest.UsageError(f"{flag}: expected {exc.expected}, got {exc.got!r}") from None


#: deprecation warnings the libraries raise about each other (nothing a suite can change); a project
#: outside this repository gets the same filters as the repository's own pyproject.toml
LIBRARY_WARNINGS = (
    "ignore:`torch.jit.script_method` is deprecated:DeprecationWarning",
    "ignore:`is_gradient_checkpointing` is deprecated:FutureWarning",
    "ignore:The ``noload`` loader strategy is deprecated:DeprecationWarning",
    "ignore::DeprecationWarning:jieba.*",
)


class _Configured:
    depth = 0  # pytest configurations in this process now (more than one: pytester's in-process runs)


def pytest_configure(config: pytest.Config) -> None:
    _Configured.depth += 1
    config.addinivalue_line("markers", "ft_suite(name): the candidate-spec suite this module or test evaluates")
    for line in LIBRARY_WARNINGS:
        config.addinivalue_line("filterwarnings", line)
    install_log_redaction()  # no API key or URL password reaches captured logs or --junitxml
    interrupts.install()  # every Ctrl-C is recorded, even one a finalizer swallows
    options = session_options(config)
    offline_for_local_base(options)
    session = FtSession(options)
    config.stash[SESSION_KEY] = session
    config.pluginmanager.register(session, "ft-harness-session")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_unconfigure(config: pytest.Config) -> Generator[None, None, None]:
    """Around every other plugin's unconfigure (JUnit XML, log files, pytest's own "KeyboardInterrupt"
    line): then the session goes, and an interrupted run leaves at once."""
    session = config.stash.get(SESSION_KEY, None)
    try:
        yield
    finally:
        if session is not None:
            del config.stash[SESSION_KEY]
            config.pluginmanager.unregister(session)
        interrupts.uninstall()
        _Configured.depth -= 1
    exit_status = None if session is None else fast_exit_status(config, session)
    if exit_status is not None:
        _exit_interrupted(config, exit_status)
    if session is not None and not _Configured.depth:
        # what the run loaded lives until exit: pytest's passes for unraisable exceptions after this
        # hook walk only what is newer (one full pass here still finds every one among the garbage)
        heap.settle()


def fast_exit_status(config: pytest.Config, session: FtSession) -> int | None:
    """pytest's exit status when this process ends at once, else None: an interrupted run whose
    short report is written, in the only pytest run of the process (not an xdist worker, whose
    results travel after this hook; not an in-process run inside another; not ``--debug``, whose log
    is closed later)."""
    if not session.interrupted or _Configured.depth or hasattr(config, "workerinput"):
        return None
    return None if config.getoption("debug", None) else session.exit_status


def _exit_interrupted(config: pytest.Config, exit_status: int) -> None:
    """Every other plugin has unconfigured (the JUnit XML and the reports were written at session
    finish, log files closed): print what output capture still holds, then end the process with pytest's exit status,
    skipping pytest's garbage-collection passes and the interpreter's teardown of the loaded models."""
    capture = config.pluginmanager.get_plugin("capturemanager")
    if capture is not None:
        capture.stop_global_capturing()
    interrupts.exit_now(exit_status)


class FtSession(EvalSession):
    """The evaluation session as a pytest plugin: it counts the tests that ran, merges xdist
    workers' records, and at session finish writes the baseline (complete runs only) and reports."""

    def __init__(self, options: SessionOptions) -> None:
        super().__init__(options)
        self.tests_finished = 0
        self._pytest_session: pytest.Session | None = None

    @property
    def exit_status(self) -> int | None:
        """pytest's exit status of the run (final once the session has finished; None without a session)."""
        return None if self._pytest_session is None else int(self._pytest_session.exitstatus)

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self._pytest_session = session

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """The suites this run evaluates, in test order (what a build helper trains ahead)."""
        if hasattr(session.config, "workerinput"):  # xdist workers build their own share
            return
        marked = (item.get_closest_marker("ft_suite") for item in session.items)
        self.planned_suites = list(dict.fromkeys(str(m.args[0]) for m in marked if m is not None and m.args))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "teardown":
            self.tests_finished += 1

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        if interrupts.received():  # a Ctrl-C that something swallowed still ends the run here
            raise KeyboardInterrupt

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        payload = getattr(node, "workeroutput", {}).get("ft_state")
        if payload:
            self.state.merge(RunState.from_dict(json.loads(payload)))
            self.used = True

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if hasattr(session.config, "workerinput"):  # an xdist worker: hand the records to the controller
            self.record_run_info()
            session.config.workeroutput["ft_state"] = json.dumps(self.state.as_dict(), default=str)  # type: ignore[attr-defined]  # set by xdist
            self.close()
            return
        refused = self.finish(exitstatus, incomplete=self._incomplete(session, exitstatus))
        if self.interrupted:
            session.exitstatus = pytest.ExitCode.INTERRUPTED
        elif refused:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def _incomplete(self, session: pytest.Session, exitstatus: int) -> str | None:
        """Why this run did not complete (interrupted, stopped early, tests not run), or None."""
        if exitstatus == pytest.ExitCode.INTERRUPTED:
            return "the run was interrupted"
        if exitstatus in (pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.USAGE_ERROR):
            return f"the run ended with {pytest.ExitCode(exitstatus).name}"
        missing = session.testscollected - self.tests_finished
        if missing > 0:
            return f"{missing} of {session.testscollected} test(s) did not run"
        return None

    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
        written = self.state.run_info.get("written")
        if not written:
            return
        write = terminalreporter.write_line
        terminalreporter.section("ft-harness")
        for note in self.state.run_info.get("notes", []):
            write(note)

        for line in data_loss_warnings(self.state):  # training rows the trainer never saw whole
            write(f"⚠ {line}", yellow=True)

        for gate in self.state.gates:
            if gate.verdict in ("regressed", "inconclusive"):  # with the numbers behind it
                write(record_line(gate))
            elif gate.verdict not in ("pass", "improved"):
                write(f"{gate.suite}/{gate.candidate} {gate.metric}: {gate.verdict}")
        by_category: dict[str, int] = {}
        for problem in self.state.problems:
            by_category[problem.category] = by_category.get(problem.category, 0) + 1
        if by_category:
            write("failures: " + ", ".join(f"{n} {c}" for c, n in sorted(by_category.items())))
        for problem in self.state.problems:
            write(f"  [{problem.category}] {problem.nodeid}: {problem.message[:160]}")
        cache = self.state.run_info.get("cache")
        if cache:
            write(f"cache: {cache}")
        write(f"reports: {', '.join(written[:3])}{' ...' if len(written) > 3 else ''}")

        for line in github_annotations(self.state):  # GitHub workflow commands: one per regression
            write(line)


SESSION_KEY = pytest.StashKey[FtSession]()


def _session(config: pytest.Config) -> FtSession:
    return config.stash[SESSION_KEY]


# -- fixtures ------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def ft_session(pytestconfig: pytest.Config) -> FtSession:
    """The ft-harness session: spec, cache, candidates and recorded results."""
    return _session(pytestconfig)


@pytest.fixture
def ft_suite(request: pytest.FixtureRequest, ft_session: FtSession):
    """The suite named by the closest ``@pytest.mark.ft_suite("name")`` marker."""
    marker = request.node.get_closest_marker("ft_suite")
    if marker is None or not marker.args:
        raise pytest.UsageError(f"{request.node.nodeid}: mark the module with pytestmark = "
                                "pytest.mark.ft_suite('<suite name from the spec>')")
    return ft_session.spec.suite(str(marker.args[0]))


@pytest.fixture
def candidate(ft_session: FtSession, ft_suite) -> Callable[[str], Any]:
    """``candidate(name)``: the built (trained or loaded) candidate of this suite."""
    return lambda name: ft_session.candidate(ft_suite.name, name)


@pytest.fixture
def evaluate(ft_session: FtSession, ft_suite) -> Callable[[str], EvalResult]:
    """``evaluate(name)``: the candidate's scores on the suite's eval split (computed once)."""
    return lambda name: ft_session.evaluate(ft_suite.name, name)


@pytest.fixture
def compare(ft_session: FtSession):
    """``compare(a, b, metric)``: paired test of result ``b`` against result ``a``."""
    return ft_session.compare


@pytest.fixture
def gate(ft_session: FtSession):
    """``gate(result, metrics=None)``: fail when a gated metric regressed against the baseline."""
    return ft_session.gate


@pytest.fixture(scope="session", autouse=True)
def _ft_junit_properties(request: pytest.FixtureRequest):
    """With ``--junitxml``, the run's verdicts and metrics become test-suite properties."""
    record = None
    if getattr(request.config.option, "xmlpath", None):
        record = request.getfixturevalue("record_testsuite_property")
    yield
    state = _session(request.config).state
    if record is None or not (state.results or state.gates):
        return

    for name, value in junit_properties(state):
        record(name, value)


# -- failure classification ------------------------------------------------------------------
@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.failed and call.excinfo is not None:

        if call.excinfo.errisinstance(GateFailure):
            category = "regression"
        elif call.excinfo.errisinstance(HarnessError):
            category = "harness error"
        elif call.excinfo.errisinstance((AssertionError, pytest.fail.Exception)):  # a suite's own check
            category = "failed check"
        else:
            category = "test error"
        text = str(call.excinfo.value).strip()
        message = text.splitlines()
        _session(item.config).state.problems.append(
            Problem(nodeid=item.nodeid, category=category, message=message[0] if message else call.excinfo.typename))
        if category == "harness error":  # the user's problem in the user's terms: no harness traceback
            report.longrepr = f"{call.excinfo.typename}: {text}" if text else call.excinfo.typename
        report.user_properties.append(("ft_failure_category", category))
    return report

"""pytest plugin: ``--ft-*`` options, the suite fixtures, failure classification and reports.

Suites ask for candidates by name through fixtures; the session builds (trains or loads) each
candidate once, evaluates it once, and at session finish writes the reports (and, with
``--ft-update-baseline``, the baseline). Heavy libraries are imported only when a fixture is used.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.errors import HarnessError
from harness.results import ComparisonRecord, EvalResult, GateRecord, Problem, RunState

DEFAULT_SPEC = "fixtures/candidates.toml"
DEFAULT_REPORTS = "reports"


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
    parser.addini("ft_spec", "candidate spec TOML, relative to the rootdir", default=DEFAULT_SPEC)
    parser.addini("ft_reports_dir", "reports folder, relative to the rootdir", default=DEFAULT_REPORTS)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "ft_suite(name): the candidate-spec suite this module or test evaluates")
    config.stash[SESSION_KEY] = FtSession(config)
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistMerge(config), "ft-harness-xdist")


class FtSession:
    """Per-process state: spec, build context, built candidates and the run's records."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.state = RunState()
        self.started = time.time()
        self._spec = None
        self._ctx = None
        self._candidates: dict[tuple[str, str], Any] = {}
        self._results: dict[tuple[str, str], EvalResult] = {}
        self._failures: dict[tuple[str, str], HarnessError] = {}
        self._splits: dict[str, Any] = {}
        self._baseline = None
        self.used = False

    # -- configuration -------------------------------------------------------------------
    def _path_option(self, option: str, ini: str) -> Path:
        value = self.config.getoption(option) or self.config.getini(ini)
        path = Path(value)
        return path if path.is_absolute() else Path(self.config.rootpath) / path

    @property
    def reports_dir(self) -> Path:
        return self._path_option("--ft-reports-dir", "ft_reports_dir")

    @property
    def baseline_path(self) -> Path:
        value = self.config.getoption("--ft-baseline")
        return Path(value) if value else self.reports_dir / "baseline.json"

    @property
    def spec(self):
        if self._spec is None:
            from harness.spec import load_spec

            self._spec = load_spec(self._path_option("--ft-spec", "ft_spec"))
        return self._spec

    @property
    def ctx(self):
        if self._ctx is None:
            from harness.cache import CacheStore, default_cache_root
            from harness.context import BuildContext

            cache_dir = self.config.getoption("--ft-cache-dir")
            root = Path(cache_dir) if cache_dir else default_cache_root(Path(self.config.rootpath))
            store = CacheStore(root, enabled=not self.config.getoption("--ft-no-cache"))
            self._ctx = BuildContext(
                spec=self.spec,
                cache=store,
                base_model=self.config.getoption("--ft-base-model") or self.spec.base_model,
                batch_size=self.config.getoption("--ft-batch-size") or self.spec.batch_size,
                options={"openai_max_cost": self.config.getoption("--ft-openai-max-cost"),
                         "encoder_model": self.config.getoption("--ft-encoder-model"),
                         # progress bars only where the user sees them: not captured, not -q
                         "progress": (self.config.getoption("capture") == "no"
                                      and self.config.getoption("verbose") >= 0),
                         "cache_root": root},
            )
        return self._ctx

    # -- work ------------------------------------------------------------------------------
    def eval_split(self, suite_name: str):
        if suite_name not in self._splits:
            from harness.data import load_split

            self._splits[suite_name] = load_split(self.spec.suite(suite_name).eval, name="eval")
        return self._splits[suite_name]

    def candidate(self, suite_name: str, name: str):
        """Build (train or load) a candidate once per session; a failure is remembered, not retried."""
        from harness.kinds import build_candidate

        key = (suite_name, name)
        if key in self._failures:
            raise self._failures[key]
        if key not in self._candidates:
            self.used = True
            suite = self.spec.suite(suite_name)
            try:
                self._candidates[key] = build_candidate(self.ctx, suite, suite.candidate(name, self.spec.path))
            except HarnessError as exc:
                self._failures[key] = exc
                raise
        return self._candidates[key]

    def evaluate(self, suite_name: str, name: str) -> EvalResult:
        """Score a candidate on its suite's eval split once per session and record the result."""
        from harness.runner.evaluate import evaluate_candidate

        key = (suite_name, name)
        if key not in self._results:
            candidate = self.candidate(suite_name, name)
            suite, split = self.spec.suite(suite_name), self.eval_split(suite_name)
            result = evaluate_candidate(self.ctx, candidate, suite, split)
            repeats = int(self.config.getoption("--ft-repeat") or 1)
            if repeats > 1:
                from harness.runner.stability import repeat_evaluation

                result.details["repeats"] = repeat_evaluation(self.ctx, candidate, suite, split, result, repeats)
            self._results[key] = result
            self.state.results.append(result)
        return self._results[key]

    def compare(self, a: EvalResult, b: EvalResult, metric: str, *, alpha: float = 0.05):
        """Paired comparison of ``b`` against ``a`` on ``metric`` (recorded for the report)."""
        from harness.stats import compare

        if a.suite != b.suite:
            raise ValueError(f"cannot pair {a.candidate!r} of suite {a.suite!r} with {b.candidate!r} of suite {b.suite!r}")
        if a.example_ids != b.example_ids:
            raise ValueError(f"{a.candidate!r} and {b.candidate!r} were scored on different examples; cannot pair")
        scores_a, kind = a.paired_scores(metric)
        scores_b, _ = b.paired_scores(metric)
        result = compare(scores_a, scores_b, kind=kind, alpha=alpha)
        self.state.comparisons.append(ComparisonRecord(suite=a.suite, metric=metric, a=a.candidate,
                                                       b=b.candidate, result=_as_plain(result)))
        return result

    @property
    def baseline(self):
        if self._baseline is None:
            from harness.gate import load_baseline

            self._baseline = load_baseline(self.baseline_path)
        return self._baseline

    def gate(self, result: EvalResult, metrics: list[str] | None = None) -> list[GateRecord]:
        """Gate ``result`` against the stored baseline; raises a failure naming every regression."""
        __tracebackhide__ = True
        from harness.gate import GateConfig, check, raise_on_failure

        suite = self.spec.suite(result.suite)
        config = GateConfig.from_mapping(suite.gate, where=f"{self.spec.path}: suites.{suite.name}.gate")
        if metrics:
            config = config.only(metrics)
        updating = self.config.getoption("--ft-update-baseline")
        strict = self.config.getoption("--ft-strict")
        records = check(result, self.baseline, config, strict=strict)
        if updating:
            for record in records:
                record.details["updating_baseline"] = True
        self.state.gates.extend(records)
        if not updating:
            raise_on_failure(records, strict=strict, policy=config.inconclusive)
        return records


def _as_plain(value: Any) -> dict[str, Any]:
    import dataclasses

    if dataclasses.is_dataclass(value):
        return json.loads(json.dumps(dataclasses.asdict(value), default=str))
    return dict(value)


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
    from harness.report import junit_properties

    for name, value in junit_properties(state):
        record(name, value)


# -- failure classification ------------------------------------------------------------------
@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.failed and call.excinfo is not None:
        from harness.gate import GateFailure

        if call.excinfo.errisinstance(GateFailure):
            category = "regression"
        elif call.excinfo.errisinstance(HarnessError):
            category = "harness error"
        else:
            category = "test error"
        message = str(call.excinfo.value).strip().splitlines()
        _session(item.config).state.problems.append(
            Problem(nodeid=item.nodeid, category=category, message=message[0] if message else call.excinfo.typename))
        report.user_properties.append(("ft_failure_category", category))
    return report


# -- session finish: merge, baseline, reports -------------------------------------------------
class _XdistMerge:
    """Collect each xdist worker's records on the controller."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error) -> None:
        payload = getattr(node, "workeroutput", {}).get("ft_state")
        if payload:
            session = _session(self.config)
            session.state.merge(RunState.from_dict(json.loads(payload)))
            session.used = True


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    ft = _session(session.config)
    if ft._ctx is not None:
        ft.state.run_info["cache"] = ft.ctx.cache.stats()
        ft.state.run_info["events"] = dict(ft.ctx.events)
    if _is_worker(session.config):
        session.config.workeroutput["ft_state"] = json.dumps(ft.state.as_dict(), default=str)
        if ft._ctx is not None:
            ft.ctx.cache.close()
        return
    if not (ft.used or ft.state.results or ft.state.gates):
        return
    ft.state.run_info.setdefault("duration_s", round(time.time() - ft.started, 1))
    ft.state.run_info["exit_status"] = int(exitstatus)
    notes = []
    if session.config.getoption("--ft-update-baseline") and ft.state.results:
        from harness.gate import update_baseline

        try:
            outcome = update_baseline(ft.baseline_path, ft.state, force=session.config.getoption("--ft-force"))
            notes.append(str(outcome))
        except HarnessError as exc:
            notes.append(f"baseline NOT updated: {exc}")
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
    from harness.report import write_reports
    from harness.runner.outputs import write_outputs

    written = write_reports(ft.state, ft.reports_dir, baseline_note="\n".join(notes) or None)
    written += write_outputs(ft.state, ft.reports_dir / "outputs")
    ft.state.run_info["written"] = [str(p) for p in written]
    ft.state.run_info["notes"] = notes
    if ft._ctx is not None:
        ft.ctx.cache.close()


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    ft = _session(config)
    written = ft.state.run_info.get("written")
    if not written:
        return
    terminalreporter.section("ft-harness")
    for note in ft.state.run_info.get("notes", []):
        terminalreporter.write_line(note)
    for gate in ft.state.gates:
        if gate.verdict not in ("pass", "improved"):
            terminalreporter.write_line(f"{gate.suite}/{gate.candidate} {gate.metric}: {gate.verdict}")
    by_category: dict[str, int] = {}
    for problem in ft.state.problems:
        by_category[problem.category] = by_category.get(problem.category, 0) + 1
    if by_category:
        terminalreporter.write_line("failures: " + ", ".join(f"{n} {c}" for c, n in sorted(by_category.items())))
    for problem in ft.state.problems:
        terminalreporter.write_line(f"  [{problem.category}] {problem.nodeid}: {problem.message[:160]}")
    cache = ft.state.run_info.get("cache")
    if cache:
        terminalreporter.write_line(f"cache: {cache}")
    terminalreporter.write_line(f"reports: {', '.join(written[:3])}{' ...' if len(written) > 3 else ''}")

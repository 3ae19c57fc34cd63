"""The evaluation session: build the context once, each candidate once, evaluate once, compare,
gate, record, and at the end update the baseline and write the reports.

Used by the pytest plugin (which registers a session as a plugin), by ``rescore`` (the same
compare and gate code), by ``python -m harness.cli.train`` and by the benchmarks (the same build
context). Nothing here imports pytest; heavy libraries load only when a candidate is built.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import interrupts
from harness.backends.hf.embedded import embedded_base_dir
from harness.cache import CacheStore
from harness.context import BuildContext, BuildOptions, looks_like_path
from harness.data.slices import cluster_labels, slice_members
from harness.data.tokens import load_tokenizer, tokenizer_counter
from harness.errors import HarnessError, SpecError
from harness.gate import (
    GateConfig,
    GateFailure,
    check,
    load_baseline,
    raise_on_failure,
    update_baseline,
)
from harness.gate.ab import compare_paired
from harness.gate.collateral import (
    collateral_failing,
    collateral_failure_message,
    compare_with_baseline,
)
from harness.gate.failure import UPDATE_COMMANDS, update_commands
from harness.gate.flips import between
from harness.gate.history import history_path, read_history
from harness.gate.slice_compare import compare_slices
from harness.heap import settle
from harness.kinds import build_candidate, load_spec
from harness.options import DEFAULT_REPORTS, DEFAULT_SPEC, OptionError, SessionOptions
from harness.report import write_reports
from harness.report.decision import decision_settings
from harness.report.publish import discard, publish, staging_dir, write_interrupted
from harness.report.tracking import log_run
from harness.results import ComparisonRecord, EvalResult, GateRecord, RunState
from harness.runner.collateral import run_collateral
from harness.runner.evaluate import evaluate_candidate
from harness.runner.human import apply_human
from harness.runner.judging import apply_judges
from harness.runner.outputs import outputs_path, write_outputs
from harness.runner.prebuild import BuildHelper, helper_command, prebuild_order
from harness.runner.preflight import check_prompted_fit, check_suite_data
from harness.runner.stability import repeat_evaluation
from harness.secrets import redact_text, redact_url

__all__ = ["DEFAULT_REPORTS", "DEFAULT_SPEC", "EvalSession", "OptionError", "PairingError", "SessionOptions",
           "as_plain", "compare_results", "enforce_gate", "gate_config", "gate_records", "paired_scores"]


_INTERRUPTED = 2  # pytest's exit status of an interrupted session


class PairingError(ValueError):
    """Two results cannot be paired example by example (other suite, other examples)."""


# -- compare and gate: shared with rescore ---------------------------------------------------
def _positions(result: EvalResult) -> dict[str, int]:
    positions: dict[str, int] = {}
    for i, example_id in enumerate(result.example_ids):
        if example_id in positions:
            raise PairingError(f"{result.suite}/{result.candidate}: example id {example_id!r} appears "
                               f"twice (positions {positions[example_id] + 1} and {i + 1}); cannot pair")
        positions[example_id] = i
    return positions


def _some(ids: list[str], limit: int = 5) -> str:
    shown = ", ".join(repr(i) for i in ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def paired_scores(a: EvalResult, b: EvalResult, metric: str) -> tuple[list[float], list[float], str]:
    """The per-example scores behind ``metric`` of ``a`` and ``b``, paired by example id (in
    ``a``'s order), and their type; a PairingError when the two were not scored on the same ids."""
    if a.suite != b.suite:
        raise PairingError(f"cannot pair {a.candidate!r} of suite {a.suite!r} with {b.candidate!r} "
                           f"of suite {b.suite!r}")
    scores_a, kind = a.paired_scores(metric)
    scores_b, _ = b.paired_scores(metric)
    where_a, where_b = _positions(a), _positions(b)
    if where_a.keys() != where_b.keys():
        only_a = [i for i in a.example_ids if i not in where_b]
        only_b = [i for i in b.example_ids if i not in where_a]
        parts = [f"{len(ids)} only in {name!r} ({_some(ids)})"
                 for name, ids in ((a.candidate, only_a), (b.candidate, only_b)) if ids]
        raise PairingError(f"{a.candidate!r} and {b.candidate!r} were scored on different examples; "
                           f"cannot pair: {'; '.join(parts)}")
    ordered_b = [scores_b[where_b[i]] for i in a.example_ids]
    keep = [i for i, (x, y) in enumerate(zip(scores_a, ordered_b, strict=True)) if x is not None and y is not None]
    if len(keep) < len(ordered_b):  # a metric over some examples only (people's labels): pair what both have
        return [scores_a[i] for i in keep], [ordered_b[i] for i in keep], kind
    return list(scores_a), ordered_b, kind


def offline_for_local_base(options: SessionOptions) -> None:
    """No hub lookups when the base model is a path: set the Hugging Face offline switches (unless the
    environment sets them) before any library reads them."""
    import os

    import tomllib


    ref = options.base_model
    if ref is None:
        try:
            spec = tomllib.loads(Path(options.spec_path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            return  # the session reports the spec itself
        harness_table = spec["harness"] if isinstance(spec.get("harness"), dict) else {}
        ref = harness_table.get("base_model")
    if isinstance(ref, str) and looks_like_path(ref):
        for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
            os.environ.setdefault(name, "1")


def as_plain(value: Any) -> dict[str, Any]:
    """A dataclass (or mapping) as JSON-ready plain data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return json.loads(json.dumps(dataclasses.asdict(value), default=str))
    return dict(value)


def compare_results(a: EvalResult, b: EvalResult, metric: str, *, alpha: float = 0.05,
                    config: Any = None) -> tuple[Any, ComparisonRecord]:
    """Paired test of ``b`` against ``a`` on ``metric`` and the record the report shows (with the
    per-slice comparisons when the results carry slices; ``config`` is the suite's GateConfig)."""
    scores_a, scores_b, kind = paired_scores(a, b, metric)
    result = compare_paired(a, b, metric, scores_a, scores_b, kind, alpha=alpha)
    plain = as_plain(result)

    plain["flips"] = between(a, b, metric, a.example_ids, scores_a, scores_b)
    if a.slices or b.slices:

        plain["slices"] = compare_slices(a, b, metric, alpha=alpha,
                                         correction=getattr(config, "slice_correction", "holm"),
                                         min_size=getattr(config, "min_slice_size", 20))
    return result, ComparisonRecord(suite=a.suite, metric=metric, a=a.candidate, b=b.candidate,
                                    result=plain, flags=list(result.flags))


def gate_config(spec: Any, suite: str, metrics: list[str] | None = None) -> Any:
    """The gate settings of ``suite`` in ``spec`` (defaults when there is no spec or no such suite)."""

    known = spec is not None and suite in spec.suites
    table = spec.suites[suite].gate if known else {}
    if isinstance(table, GateConfig):
        config = table
    else:
        where = f"{spec.path}: suites.{suite}.gate" if known else f"suites.{suite}.gate"
        config = GateConfig.from_mapping(table or {}, where=where)
    return config.only(metrics) if metrics else config


def gate_records(result: EvalResult, baseline: Any, config: Any, *, strict: bool = False,
                 updating: bool = False, history: Any = ()) -> list[GateRecord]:
    """Every gated metric's verdict against ``baseline`` (never raises on a verdict); ``history``:
    the baseline's ``history.jsonl`` entries (trend and ``max_drift``)."""

    records = check(result, baseline, config, strict=strict, history=history)
    if updating:
        for record in records:
            record.details["updating_baseline"] = True
    return records


def enforce_gate(records: list[GateRecord], config: Any, *, strict: bool = False,
                 commands: tuple[str, str] | None = None) -> None:
    """Raise GateFailure naming every failing metric (SpecError for a gate asking for metrics
    the result lacks); ``commands`` are the update commands its message prints."""
    __tracebackhide__ = True

    raise_on_failure(records, strict=strict, policy=config.inconclusive, commands=commands or UPDATE_COMMANDS)


def enforce_collateral(records: list[Any], config: Any, *, against_baseline: bool = True,
                       strict: bool = False) -> None:
    """Raise GateFailure naming every failing collateral check (regressed against the reference, or
    against the baseline unless ``against_baseline`` is off: while the baseline is being updated)."""
    __tracebackhide__ = True

    failing = collateral_failing(records, policy=config.inconclusive, against_baseline=against_baseline,
                                 strict=strict)
    if failing:
        raise GateFailure(collateral_failure_message(failing), [])


def _stop_if_interrupted() -> None:
    """A Ctrl-C that something swallowed (a finalizer, a library's broad ``except``) stops the run
    at the next build or evaluation, not only at the next test."""
    if interrupts.received():
        raise KeyboardInterrupt


# -- the session -----------------------------------------------------------------------------
class EvalSession:
    """One evaluation run: spec, build context, built candidates and the run's records."""

    def __init__(self, options: SessionOptions, *, log: Callable[[str], None] | None = None) -> None:
        self.options = options
        self.state = RunState()
        self.started = time.time()
        self.used = False
        self.interrupted = False  # set by finish(): the run ended interrupted
        self._baseline_written = False
        self._log = log
        self._spec: Any = None
        self._ctx: Any = None
        self._baseline: Any = None
        self._history: list[dict[str, Any]] | None = None
        self._candidates: dict[tuple[str, str], Any] = {}
        self._results: dict[tuple[str, str], EvalResult] = {}
        self._failures: dict[tuple[str, str], HarnessError] = {}
        self._splits: dict[str, Any] = {}
        self._prompt_errors: list[HarnessError] | None = None  # prompted candidates that do not fit
        self._slices: dict[str, dict[str, dict[str, list[str]]]] = {}
        self._collateral: dict[tuple[str, str], list[Any]] = {}
        #: the suites this run evaluates, in order (the plugin sets them once tests are collected);
        #: with ``build_processes = 2`` a helper trains their candidates ahead (harness.runner.prebuild)
        self.planned_suites: list[str] = []
        self._helper: BuildHelper | None = None

    @property
    def reports_dir(self) -> Path:
        return self.options.reports_dir

    @property
    def baseline_path(self) -> Path:
        return self.options.baseline_file

    @property
    def update_commands(self) -> tuple[str, str]:
        """The pytest and ``baseline accept`` commands that accept this run (with its paths)."""

        o = self.options
        return update_commands(o.spec_path, o.reports_dir, o.baseline_path, root_dir=o.root_dir,
                               defaults=(DEFAULT_SPEC, DEFAULT_REPORTS))

    @property
    def spec(self) -> Any:
        """The candidate spec (loaded, and checked, on first use)."""
        if self._spec is None:

            spec = load_spec(self.options.spec_path)
            self._check_data(spec)
            self._spec = spec

            self.state.settings = decision_settings(self._spec)  # what the report's decision reads
        return self._spec

    def _check_data(self, spec: Any) -> None:
        """Read every suite's data and check it against the spec before anything trains (SpecError)."""

        for name, suite in spec.suites.items():
            data = check_suite_data(suite, spec)
            self._splits[name] = data.splits["eval"]
            note = data.overlap_note(suite)
            if note:
                self.state.run_info.setdefault("train_eval_overlap", {})[name] = note

    @property
    def has_context(self) -> bool:
        """Whether the build context (and so the cache) was opened."""
        return self._ctx is not None

    @property
    def ctx(self) -> Any:
        """The build context every candidate of this session is built with (made once)."""
        if self._ctx is None:

            options, spec = self.options, self.spec
            root = options.cache_root
            extra: dict[str, Any] = {"log": self._log} if self._log is not None else {}
            self._ctx = BuildContext(
                spec=spec, cache=CacheStore(root, enabled=not options.no_cache),
                base_model=options.base_model or spec.base_model,
                batch_size=options.batch_size or spec.batch_size,
                options=BuildOptions(cache_root=root, resume=options.resume, progress=options.progress,
                                     encoder_model=options.encoder_model,
                                     openai_max_cost=options.openai_max_cost),
                embedded_base=embedded_base_dir, **extra)
        return self._ctx

    # -- work ----------------------------------------------------------------------------------
    def eval_split(self, suite_name: str) -> Any:
        """The suite's eval split (read once)."""
        if suite_name not in self._splits:
            self._splits[suite_name] = self.spec.suite(suite_name).load_split("eval")
        return self._splits[suite_name]

    def slice_members(self, suite_name: str) -> dict[str, dict[str, list[str]]]:
        """Membership of the suite's declared slices in its eval split (computed once)."""
        if suite_name not in self._slices:
            suite, members = self.spec.suite(suite_name), {}
            if suite.slices:

                count = None
                if any(s.by == "length" and s.tokenizer == "base" for s in suite.slices):

                    count = tokenizer_counter(load_tokenizer(str(self.ctx.base_model_dir()))).count
                split = self.eval_split(suite_name)
                members = slice_members(split.examples, suite.slices, labels=suite.labels,
                                        count_tokens=count, path=split.path)
            self._slices[suite_name] = members
        return self._slices[suite_name]

    def candidate(self, suite_name: str, name: str) -> Any:
        """Build (train or load) a candidate once per session; a failure is remembered, not retried."""
        _stop_if_interrupted()
        if self._prompt_errors is None:  # before the first build: every prompt fits its context
            self._start_helper()
            self._prompt_errors = check_prompted_fit(self._build, self.spec)
        if self._prompt_errors:
            self._stop_helper()
            raise SpecError("checked before anything trains:\n  " + "\n  ".join(map(str, self._prompt_errors)))
        return self._build(suite_name, name)

    def _start_helper(self) -> None:
        """Start the build helper when the spec asks for a second build process and the cache is shared."""
        spec, options = self.spec, self.options
        if self._helper is not None or spec.build_processes < 2 or options.no_cache or not self.planned_suites:
            return
        order = prebuild_order(spec, self.planned_suites)
        if order:
            self._helper = BuildHelper.start(helper_command(
                options.spec_path, options.cache_root, order, base_model=options.base_model,
                encoder_model=options.encoder_model, resume=options.resume), order)

    def _stop_helper(self) -> None:
        if self._helper is not None:
            self._helper.stop()

    def _build(self, suite_name: str, name: str) -> Any:

        key = (suite_name, name)
        if key in self._failures:
            raise self._failures[key]
        if key not in self._candidates:
            self.used = True
            suite = self.spec.suite(suite_name)
            settle()  # what earlier builds imported stays out of the collections this build triggers
            try:
                self._candidates[key] = build_candidate(self.ctx, suite, suite.candidate(name, self.spec.path))
            except HarnessError as exc:
                self._failures[key] = exc
                raise
        return self._candidates[key]

    def evaluate(self, suite_name: str, name: str) -> EvalResult:
        """Score a candidate on its suite's eval split once per session and record the result."""

        key = (suite_name, name)
        if key not in self._results:
            candidate = self.candidate(suite_name, name)
            suite, split = self.spec.suite(suite_name), self.eval_split(suite_name)
            _stop_if_interrupted()
            result = evaluate_candidate(self.ctx, candidate, suite, split)
            result.slices = self.slice_members(suite_name)
            if suite.cluster is not None:
                result.clusters = cluster_labels(split.examples, suite.cluster)
            if suite.judges or suite.human is not None:
                self._grade(suite, result)
            repeats = self.options.repeat if self.options.repeat > 1 else suite.repeats
            if repeats > 1:
                result.details["repeats"] = repeat_evaluation(self.ctx, candidate, suite, split, result, repeats)
            self._results[key] = result
            self.state.results.append(result)
        return self._results[key]

    def _grade(self, suite: Any, result: EvalResult) -> None:
        """Judges and people's labels: they read other candidates' outputs, which may need this one's
        (so the result is visible to them while it is graded, and forgotten if grading fails)."""

        key = (suite.name, result.candidate)
        self._results[key] = result
        try:
            other = lambda name: self.evaluate(suite.name, name)  # noqa: E731
            if suite.judges:
                apply_judges(self.ctx, suite, result, other)
            apply_human(suite, result, other)
        except BaseException:
            self._results.pop(key, None)
            raise

    def compare(self, a: EvalResult, b: EvalResult, metric: str, *, alpha: float = 0.05) -> Any:
        """Paired comparison of ``b`` against ``a`` on ``metric``, paired by example id (recorded)."""
        result, record = compare_results(a, b, metric, alpha=alpha, config=gate_config(self.spec, a.suite))
        self.state.comparisons.append(record)
        return result

    @property
    def baseline(self) -> Any:
        """The stored baseline (read once)."""
        if self._baseline is None:

            self._baseline = load_baseline(self.baseline_path)
            self._baseline.commands = self.update_commands  # its note names this run's paths
        return self._baseline

    @property
    def history(self) -> list[dict[str, Any]]:
        """The gated values of earlier baseline updates (``history.jsonl`` beside the baseline; read once)."""
        if self._history is None:

            self._history = read_history(history_path(self.baseline_path))
        return self._history

    def gate(self, result: EvalResult, metrics: list[str] | None = None) -> list[GateRecord]:
        """Gate ``result`` against the stored baseline; raises a failure naming every regression."""
        __tracebackhide__ = True
        config = gate_config(self.spec, result.suite, metrics)
        updating, strict = self.options.update_baseline, self.options.strict
        records = gate_records(result, self.baseline, config, strict=strict, updating=updating,
                               history=self.history)
        self.state.gates.extend(records)
        collateral = self.collateral(result) if metrics is None else []
        for record in collateral:  # how it was gated: what the report's verdict line reads
            if record.baseline:
                record.baseline.update(policy=config.inconclusive, strict=strict, updating_baseline=updating)
        if not updating:
            enforce_gate(records, config, strict=strict, commands=self.update_commands)
        enforce_collateral(collateral, config, against_baseline=not updating, strict=strict)
        return records

    def collateral(self, result: EvalResult) -> list[Any]:
        """The suite's collateral checks of ``result``'s candidate against the reference (once, recorded)."""
        key = (result.suite, result.candidate)
        if key not in self._collateral:
            suite = self.spec.suite(result.suite)
            checks = suite.collateral.checks_for(result.candidate) if suite.collateral else []
            records: list[Any] = []
            if checks:

                reference = self.candidate(suite.name, suite.collateral.reference)
                alpha = gate_config(self.spec, suite.name).alpha
                records = run_collateral(self.ctx, suite, self.candidate(suite.name, result.candidate), reference,
                                         checks, alpha=alpha, split=self.eval_split(suite.name))
                entry = self.baseline.entry(suite.name, result.candidate)
                for record in records:
                    if record.ids:
                        record.baseline = compare_with_baseline(record, entry, alpha=alpha)
            self._collateral[key] = records
            self.state.collateral.extend(records)
        return self._collateral[key]

    # -- the end -------------------------------------------------------------------------------
    def record_run_info(self) -> None:
        """Put this process's cache counters and run events into the run info."""
        if self._ctx is not None:
            self.state.run_info["cache"] = self._ctx.cache.stats()
            self.state.run_info["events"] = dict(self._ctx.events)

    def finish(self, exit_status: int, *, incomplete: str | None = None) -> bool:
        """Update the baseline (when asked, and only when the run completed) and write the reports.

        ``incomplete`` says why the run did not complete (interrupted, tests not run): then the
        baseline is never written. An interrupted run (exit status 2, or an interrupt recorded by
        :mod:`harness.interrupts` even if something swallowed it) writes only a short "interrupted"
        report; an interrupt while the reports render abandons them the same way. Reports render
        into a staging folder and replace the previous run's only once complete, the baseline
        written just before, so two runs never mix. Returns True when a requested baseline update
        was refused; ``self.interrupted`` says whether the run ended interrupted.
        """

        self.record_run_info()
        try:
            # a spec refused at load used no candidate, yet still ends in the summary and reports
            harness_errors = any(p.category == "harness error" for p in self.state.problems)
            if not (self.used or self.state.results or self.state.gates or harness_errors):
                self.interrupted = interrupts.received() or exit_status == _INTERRUPTED
                return False
            info = self.state.run_info
            info.setdefault("duration_s", round(time.time() - self.started, 1))
            info["exit_status"] = int(exit_status)
            for key, path in (("spec_path", self.options.spec_path), ("baseline_path", self.baseline_path)):
                info.setdefault(key, str(Path(path).resolve()))  # what `ft-harness rescore` gates with
            if interrupts.received() or exit_status == _INTERRUPTED:
                return self._finish_interrupted()
            if incomplete:
                info["incomplete"] = incomplete  # `ft-harness baseline accept` refuses such a run
            try:
                return self._publish(incomplete)
            except KeyboardInterrupt:
                interrupts.note()
                return self._finish_interrupted()
        finally:
            self.close()

    def _finish_interrupted(self) -> bool:
        """The short report of an interrupted run; a further Ctrl-C meanwhile is only recorded."""

        self.interrupted = True
        reason = "the run was interrupted"
        info = self.state.run_info
        info["incomplete"] = reason
        info["exit_status"] = _INTERRUPTED
        notes = [f"baseline NOT updated: {reason}; only a run that completes writes the baseline"] \
            if self.options.update_baseline and self.state.results and not self._baseline_written else []

        with interrupts.deferred(raise_after=False):
            outputs = write_outputs(self.state, self.reports_dir / "outputs")
            written = write_interrupted(self.state, self.reports_dir, reason=reason, keep=[self.baseline_path],
                                        also=outputs)
        info["written"] = [str(p) for p in written]
        info["notes"] = [*notes, f"reports: a short 'interrupted' report only ({reason})"]
        return False

    def _publish(self, incomplete: str | None) -> bool:
        """Render the reports into a staging folder; then, unless interrupted meanwhile, write the
        baseline and move the reports into place (interrupts held back for those few renames)."""

        info = self.state.run_info
        notes, refused = self._update_baseline(incomplete, dry_run=True)
        staging = staging_dir(self.reports_dir)
        try:
            written = write_reports(self.state, staging, baseline_note="\n".join(notes) or None)
            written += write_outputs(self.state, staging / "outputs")
        except BaseException:
            discard(staging)
            raise
        try:
            if interrupts.received():  # one that something swallowed while the reports rendered
                raise KeyboardInterrupt
            if notes and not refused and self.options.update_baseline and not incomplete:
                # an interrupt up to the file's atomic replace leaves the old baseline whole
                notes, refused = self._update_baseline(incomplete)
                self._baseline_written = True
        except BaseException:
            discard(staging)
            raise
        with interrupts.deferred(raise_after=False):
            written = publish(staging, self.reports_dir, written, keep=[self.baseline_path])
        self.interrupted = interrupts.received()  # landed after the baseline was written: still reported
        info["written"] = [str(p) for p in written]
        if self.options.mlflow is not None:
            notes.append(self._track())
        info["notes"] = notes
        return refused

    def _adapter_dirs(self) -> dict[tuple[str, str], Path]:
        """The saved adapter directory of each built candidate (``--ft-mlflow-log-model``)."""
        if not self.options.mlflow_log_model:
            return {}
        dirs = {key: candidate.saved_dirs()[1] for key, candidate in self._candidates.items()}
        return {key: path for key, path in dirs.items() if path is not None}

    def _track(self) -> str:
        """Log the run to MLflow; the note says where (or why not: never an exception)."""

        outputs = {(r.suite, r.candidate): outputs_path(self.reports_dir / "outputs", r.suite, r.candidate)
                   for r in self.state.results}
        warnings: list[str] = []
        try:
            logged = log_run(self.state, self.reports_dir, tracking_uri=self.options.mlflow or None,
                             outputs=outputs, model_dirs=self._adapter_dirs(), warn=warnings.append)
        except Exception as exc:
            return f"⚠ MLflow: logging failed: {redact_text(str(exc))[:300]}"
        prefix = "".join(f"⚠ {w}\n" for w in warnings)
        return (f"{prefix}MLflow: {len(logged.suite_runs)} suite run(s), {len(logged.candidate_runs)} candidate "
                f"run(s) in experiment {logged.experiment_id} at {redact_url(logged.tracking_uri)}")

    def _update_baseline(self, incomplete: str | None, *, dry_run: bool = False) -> tuple[list[str], bool]:
        if not (self.options.update_baseline and self.state.results):
            return [], False
        if incomplete:
            return [f"baseline NOT updated: {incomplete}; only a run that completes writes the baseline"], False

        try:
            return [str(update_baseline(self.baseline_path, self.state, force=self.options.force,
                                        dry_run=dry_run))], False
        except HarnessError as exc:
            return [f"baseline NOT updated: {exc}"], True

    def close(self) -> None:
        """Stop the build helper; release the cache (its in-use locks and any scratch folders)."""
        self._stop_helper()
        if self._ctx is not None:
            self._ctx.cache.close()

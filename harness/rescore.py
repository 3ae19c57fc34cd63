"""Re-score a saved run from its per-example outputs: metrics, comparisons and gate verdicts,
without loading any model, through the session's compare and gate code (examples paired by id).
Works on outputs written by another tool in the same JSONL shape.

The run's collateral checks are re-scored where their stored replies allow (agreement, refusals)
and keep the run's per-item scores where only the model could recompute them (bits per byte,
calibration), each saying which (``details["rescored"]``); their verdicts against the reference
and the baseline are recomputed either way."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import DatasetError
from harness.gate import NO_BASELINE, GateFailure, load_baseline
from harness.gate.collateral import collateral_failing, compare_with_baseline
from harness.gate.history import history_path, read_history
from harness.kinds import load_spec
from harness.report import read_results
from harness.results import CollateralRecord, GateRecord, RunState
from harness.runner.collateral import rescore_record
from harness.runner.outputs import read_outputs, result_from_outputs
from harness.session import PairingError, compare_results, enforce_gate, gate_config, gate_records


@dataclass
class Rescored:
    """The re-scored run, the gate records that fail (empty when the gate passes) and the
    baseline gated against (None: not gated)."""

    state: RunState
    failing: list[GateRecord] = field(default_factory=list)
    baseline: Path | None = None
    failing_collateral: list[CollateralRecord] = field(default_factory=list)


def find_baseline(run_dir: Path, original: RunState) -> Path | None:
    """The baseline to gate a saved run against: ``baseline.json`` beside it, else the file the run
    itself was gated against (``run_info.baseline_path``). A run that was gated against a baseline
    that is in neither place is an error; a run never gated, or gated with no baseline, gives None."""
    beside = Path(run_dir) / "baseline.json"
    if beside.exists():
        return beside
    recorded = original.run_info.get("baseline_path")
    if recorded and Path(recorded).exists():
        return Path(recorded)

    if any(g.verdict != NO_BASELINE for g in original.gates):  # it was gated against a baseline
        where = f"{beside} or {recorded}" if recorded else str(beside)
        raise DatasetError(f"the run was gated, but its baseline is not there (looked for {where}); "
                           "pass --baseline FILE", path=str(Path(run_dir) / "results.json"))
    return None


def _recorded_spec(original: RunState) -> Path | None:
    recorded = original.run_info.get("spec_path")
    return Path(recorded) if recorded and Path(recorded).is_file() else None


def _outputs_root(run_dir: Path) -> Path:
    nested = run_dir / "outputs"
    return nested if nested.is_dir() else run_dir


def _check_ids(path: Path, rows: list[dict]) -> None:
    """Every example id appears once in an outputs file (pairing is by id)."""
    first: dict[str, int] = {}
    for row in rows:
        example_id = str(row["id"])
        if example_id in first:
            raise DatasetError(f"example id {example_id!r} repeats line {first[example_id]}; ids must be unique "
                               "(examples are paired by id)", path=str(path), line=row["_line"], field="id")
        first[example_id] = row["_line"]


def rescore_run(run_dir: Path, *, baseline_path: Path | None = None, spec_path: Path | None = None,
                task: str | None = None, labels: list[str] | None = None, strict: bool = False) -> Rescored:
    """Recompute every result of ``run_dir`` from ``outputs/<suite>/<candidate>.jsonl``.

    ``results.json`` in ``run_dir`` (when present) supplies each suite's task, labels, the
    comparisons to redo, and the spec and baseline the run used (when ``spec_path`` /
    ``baseline_path`` are not given; see :func:`find_baseline`); without it ``task`` (and
    ``labels`` for classification) must be given. Comparisons and gate verdicts go through the
    session's own code, examples paired by id.
    """

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DatasetError("run directory not found (expected the reports folder of a run)", path=str(run_dir))
    original = read_results(run_dir / "results.json") if (run_dir / "results.json").exists() else RunState()
    root = _outputs_root(run_dir)
    files = sorted(root.glob("*/*.jsonl"))
    for path in files:
        if not path.is_file():
            raise DatasetError("is a directory, not an outputs file (expected outputs/<suite>/<candidate>.jsonl)",
                               path=str(path))
    if not files:
        raise DatasetError("no outputs found (expected outputs/<suite>/<candidate>.jsonl)", path=str(root))
    spec = None
    if baseline_path is None:
        baseline_path = find_baseline(run_dir, original)
    spec_path = spec_path if spec_path is not None else _recorded_spec(original)
    if spec_path is not None:

        spec = load_spec(spec_path)

    state = RunState(run_info={"rescored_from": str(run_dir)})
    sources: dict[tuple[str, str], Path] = {}
    for path in files:
        suite, candidate = path.parent.name, path.stem
        template = original.result(suite, candidate)
        if task is not None and template is not None and template.task and task != template.task:
            raise DatasetError(f"--task {task} contradicts the run: {suite}/{candidate} was scored as "
                               f"{template.task} (results.json); drop --task", path=str(path))
        suite_task = task or (template.task if template else None)
        suite_labels = labels or (list(template.details.get("labels", [])) if template else [])
        if spec is not None and suite in spec.suites:
            suite_task = suite_task or spec.suites[suite].task
            suite_labels = suite_labels or list(spec.suites[suite].labels)
        if suite_task is None:
            raise DatasetError("task unknown: pass --task classification|generation (no results.json)", path=str(path))
        rows = read_outputs(path)
        _check_ids(path, rows)
        try:
            result = result_from_outputs(rows, template, suite=suite, candidate=candidate,
                                         task=suite_task, labels=suite_labels)
        except (ValueError, KeyError, TypeError) as exc:  # the scorers refuse what they cannot score
            hint = (f" (--task {task} applies to every suite of the run; rescore a folder holding one "
                    "suite's outputs, or keep the run's results.json)") if task and template is None else ""
            raise DatasetError(f"cannot score these outputs as {suite_task}: {exc}{hint}", path=str(path)) from None
        state.results.append(result)
        sources[(suite, candidate)] = path

    for record in original.comparisons:
        a, b = state.result(record.suite, record.a), state.result(record.suite, record.b)
        if a is None or b is None:
            continue
        try:
            _, redone = compare_results(a, b, record.metric, alpha=float(record.result.get("alpha", 0.05)))
        except PairingError as exc:
            files_ab = " and ".join(str(sources[(record.suite, name)]) for name in (record.a, record.b))
            raise DatasetError(f"cannot compare {files_ab} on {record.metric}: {exc}") from None
        state.comparisons.append(redone)

    for saved in original.collateral:
        state.collateral.append(rescore_record(saved, alpha=gate_config(spec, saved.suite).alpha))

    gated = {(g.suite, g.candidate) for g in original.gates}
    if baseline_path is not None and Path(baseline_path).exists():
        baseline = load_baseline(baseline_path)
        failing_collateral = []
        for check in state.collateral:
            config = gate_config(spec, check.suite)
            if check.ids:
                check.baseline = compare_with_baseline(check, baseline.entry(check.suite, check.candidate),
                                                       alpha=config.alpha)
                check.baseline.update(policy=config.inconclusive, strict=strict)
            failing_collateral += collateral_failing([check], policy=config.inconclusive, strict=strict)

        history = read_history(history_path(baseline_path))
        failing: list[GateRecord] = []
        for result in state.results:
            if gated and (result.suite, result.candidate) not in gated:
                continue
            config = gate_config(spec, result.suite)
            records = gate_records(result, baseline, config, strict=strict, history=history)
            state.gates.extend(records)
            try:
                enforce_gate(records, config, strict=strict)
            except GateFailure as failure:
                failing += failure.records
        return Rescored(state, failing, Path(baseline_path), failing_collateral)
    failing_collateral = [r for r in state.collateral
                          if collateral_failing([r], policy=gate_config(spec, r.suite).inconclusive,
                                                against_baseline=False)]
    return Rescored(state, failing_collateral=failing_collateral)

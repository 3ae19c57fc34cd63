"""Re-score a saved run from its per-example outputs: metrics, comparisons and gate verdicts,
without loading any model. Works on outputs written by another tool in the same JSONL shape."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import DatasetError
from harness.results import ComparisonRecord, GateRecord, RunState


@dataclass
class Rescored:
    """The re-scored run and the gate records that fail (empty when the gate passes)."""

    state: RunState
    failing: list[GateRecord] = field(default_factory=list)


def _outputs_root(run_dir: Path) -> Path:
    nested = run_dir / "outputs"
    return nested if nested.is_dir() else run_dir


def rescore_run(run_dir: Path, *, baseline_path: Path | None = None, spec_path: Path | None = None,
                task: str | None = None, labels: list[str] | None = None, strict: bool = False) -> Rescored:
    """Recompute every result of ``run_dir`` from ``outputs/<suite>/<candidate>.jsonl``.

    ``results.json`` in ``run_dir`` (when present) supplies each suite's task, labels and the
    comparisons to redo; without it ``task`` (and ``labels`` for classification) must be given.
    """
    from harness.gate import GateConfig, check, failing_records, load_baseline
    from harness.report import read_results
    from harness.runner.outputs import read_outputs, result_from_outputs
    from harness.stats import compare

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DatasetError("run directory not found (expected the reports folder of a run)", path=str(run_dir))
    original = read_results(run_dir / "results.json") if (run_dir / "results.json").exists() else RunState()
    root = _outputs_root(run_dir)
    files = sorted(root.glob("*/*.jsonl"))
    if not files:
        raise DatasetError("no outputs found (expected outputs/<suite>/<candidate>.jsonl)", path=str(root))
    spec = None
    if spec_path is not None:
        from harness.spec import load_spec

        spec = load_spec(spec_path)

    state = RunState(run_info={"rescored_from": str(run_dir)})
    for path in files:
        suite, candidate = path.parent.name, path.stem
        template = original.result(suite, candidate)
        suite_task = task or (template.task if template else None)
        suite_labels = labels or (list(template.details.get("labels", [])) if template else [])
        if spec is not None and suite in spec.suites:
            suite_task = suite_task or spec.suites[suite].task
            suite_labels = suite_labels or list(spec.suites[suite].labels)
        if suite_task is None:
            raise DatasetError("task unknown: pass --task classification|generation (no results.json)", path=str(path))
        state.results.append(result_from_outputs(read_outputs(path), template, suite=suite, candidate=candidate,
                                                 task=suite_task, labels=suite_labels))

    for record in original.comparisons:
        a, b = state.result(record.suite, record.a), state.result(record.suite, record.b)
        if a is None or b is None:
            continue
        scores_a, kind = a.paired_scores(record.metric)
        scores_b, _ = b.paired_scores(record.metric)
        alpha = float(record.result.get("alpha", 0.05))
        result = compare(scores_a, scores_b, kind=kind, alpha=alpha)
        import dataclasses
        import json

        plain = json.loads(json.dumps(dataclasses.asdict(result), default=str))
        state.comparisons.append(ComparisonRecord(record.suite, record.metric, record.a, record.b, plain))

    gated = {(g.suite, g.candidate) for g in original.gates}
    if baseline_path is not None and Path(baseline_path).exists():
        baseline = load_baseline(baseline_path)
        failing: list[GateRecord] = []
        for result in state.results:
            if gated and (result.suite, result.candidate) not in gated:
                continue
            table = spec.suites[result.suite].gate if spec is not None and result.suite in spec.suites else {}
            config = GateConfig.from_mapping(table, where=f"suites.{result.suite}.gate")
            records = check(result, baseline, config, strict=strict)
            state.gates.extend(records)
            failing += failing_records(records, strict=strict, policy=config.inconclusive)
        return Rescored(state, failing)
    return Rescored(state)

"""Per-example outputs saved with each run, so a run can be re-scored without any model.

One JSONL file per (suite, candidate) under ``<reports>/outputs/<suite>/<candidate>.jsonl``;
each line is ``{"id", "input", "reference", "prediction"}`` plus the per-example ``scores``
of that run. Only ``id``, ``reference`` and ``prediction`` are required to re-score, so
outputs produced by another tool can be scored in the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.data.objectlines import read_object_lines
from harness.errors import DatasetError
from harness.jsonio import strict_dumps, write_atomic
from harness.metrics.registry import is_graded, paired_score_table
from harness.results import EvalResult, RunState
from harness.runner.checks import carried_signatures
from harness.runner.scoring import score_task
from harness.text import file_stem

REQUIRED = ("id", "reference", "prediction")


def _safe(name: str) -> str:
    return file_stem(name) or "unnamed"


def outputs_path(root: Path, suite: str, candidate: str) -> Path:
    """Where one candidate's outputs for one suite are written."""
    return Path(root) / _safe(suite) / f"{_safe(candidate)}.jsonl"


def write_outputs(state: RunState, root: Path) -> list[Path]:
    """Write every result's per-example outputs; returns the files written."""
    written = []
    for result in state.results:
        lines = []
        for i, example_id in enumerate(result.example_ids):
            row: dict[str, Any] = {
                "id": example_id,
                "input": result.inputs[i],
                "reference": result.references[i],
                "prediction": result.predictions[i],
                "scores": {name: values[i] for name, values in sorted(result.per_example.items())},
            }
            lines.append(strict_dumps(row, ensure_ascii=False, sort_keys=True))
        path = outputs_path(root, result.suite, result.candidate)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, "\n".join(lines) + "\n")
        written.append(path)
    return written


def read_outputs(path: Path) -> list[dict[str, Any]]:
    """Rows of an outputs file; every problem names file, line and field."""
    path = Path(path)
    numbered, problems = read_object_lines(path, "outputs")
    rows = []
    for number, row in numbered:
        for field in REQUIRED:
            if field not in row:
                problems.append(f"{path}:{number}: field {field!r}: missing")
            elif field != "id" and not isinstance(row[field], str):
                problems.append(f"{path}:{number}: field {field!r}: expected a string, "
                                f"got {type(row[field]).__name__}")
        row["_line"] = number
        rows.append(row)
    if not rows and not problems:
        problems.append(f"{path}: no outputs (empty file)")
    if problems:
        raise DatasetError(f"{len(problems)} problem(s) in outputs file:\n  " + "\n  ".join(problems[:50]),
                           path=str(path), problems=problems)
    return rows


def _carry_graded(template: EvalResult, metrics: dict[str, float], per_example: dict[str, list[float]],
                  signatures: dict[str, str]) -> None:
    """Graded metrics (scored by a model or user code) of unchanged outputs, as the live run recorded them."""

    paired = paired_score_table()
    for name, value in template.metrics.items():
        if name in metrics or not is_graded(name):
            continue
        metrics[name] = value
        score = paired[name][0] if name in paired else None
        if score is not None and score in template.per_example:
            per_example[score] = list(template.per_example[score])
        if name in template.signatures:
            signatures[name] = template.signatures[name]


def result_from_outputs(rows: list[dict[str, Any]], template: EvalResult | None, *, suite: str,
                        candidate: str, task: str, labels: list[str]) -> EvalResult:
    """Re-score saved outputs with the same pure scoring code the live run used."""
    predictions = [row["prediction"] for row in rows]
    references = [row["reference"] for row in rows]
    if task == "classification" and not labels:
        raise DatasetError(f"suite {suite!r}: classification outputs need the label set "
                           "(from results.json or --labels)")
    recorded = template.details if template else {}
    metrics, per_example, signatures, details = score_task(
        task, predictions, references, labels=labels, aliases=recorded.get("label_aliases"),
        metrics=sorted(template.metrics) if template else (), options=recorded.get("metric_options"))
    if template is not None:
        signatures = carried_signatures(signatures, template.signatures)
        if template.predictions == predictions and template.references == references:
            _carry_graded(template, metrics, per_example, signatures)
    return EvalResult(
        suite=suite,
        candidate=candidate,
        kind=template.kind if template else "outputs",
        fingerprint=template.fingerprint if template else "outputs",
        task=task,
        split=template.split if template else "eval",
        split_fingerprint=template.split_fingerprint if template else "",
        example_ids=[str(row["id"]) for row in rows],
        inputs=[str(row.get("input", "")) for row in rows],
        references=references,
        predictions=predictions,
        metrics=metrics,
        per_example=per_example,
        signatures=signatures,
        details={**(template.details if template else {}), **details},
        usage=dict(template.usage) if template else {},
        training=template.training if template else None,
        cache={"outputs": "rescored"},
        example_fingerprints=(list(template.example_fingerprints)
                              if template and template.example_ids == [str(row["id"]) for row in rows] else []),
        slices=template.slices if template else {},  # slice membership: rescore recomputes slice verdicts
        clusters=dict(template.clusters) if template else {},
    )

"""``reports/history.jsonl``: the gated values at each baseline update, and the ``max_drift`` check.

Every accepted baseline (``--ft-update-baseline``, ``ft-harness baseline accept``) appends one
line: its date and, per suite / candidate / gated metric, the accepted value. The gate compares
each run against the *last* baseline within the tolerance, so five updates that each lose one
point all pass; the history makes that slow drift visible (the report's trend plot) and
``max_drift`` fails it: a gated metric may not fall more than ``max_drift`` below its value in the
oldest kept entry. The file keeps the newest :data:`KEEP` entries.

Line format::

    {"date": "2026-12-06T10:00:00+00:00", "values": {"<suite>": {"<candidate>": {"<metric>": 0.71}}}}
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.jsonio import write_atomic
from harness.metrics.registry import METRICS
from harness.results import GateRecord

HISTORY_FILE = "history.jsonl"
KEEP = 50


def history_path(baseline_path: str | Path) -> Path:
    """The history file beside the baseline file."""
    return Path(baseline_path).parent / HISTORY_FILE


def read_history(path: str | Path) -> list[dict[str, Any]]:
    """The entries of a history file, oldest first ([] when there is none); errors name file:line:field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise HarnessError(f"{path}: cannot read the baseline history: {exc}") from None
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            raise HarnessError(f"{path}:{number}: not valid JSON: {exc.msg}") from None
        if not isinstance(entry, dict) or not isinstance(entry.get("date"), str):
            raise HarnessError(f"{path}:{number}: field 'date': expected a string in an object")
        values = entry.get("values")
        if not isinstance(values, dict) or not all(
                isinstance(c, dict) and all(isinstance(m, dict) for m in c.values()) for c in values.values()):
            raise HarnessError(f"{path}:{number}: field 'values': expected {{suite: {{candidate: {{metric: value}}}}}}")
        entries.append(entry)
    return entries


def entry_of(gates: Iterable[GateRecord], date: str) -> dict[str, Any]:
    """The history line of an accepted run: each gated metric's current value."""
    values: dict[str, dict[str, dict[str, float]]] = {}
    for g in gates:
        if isinstance(g.current, (int, float)) and math.isfinite(g.current):
            values.setdefault(g.suite, {}).setdefault(g.candidate, {})[g.metric] = float(g.current)
    return {"date": date, "values": values}


def append_history(path: str | Path, gates: Iterable[GateRecord], date: str, *, keep: int = KEEP) -> Path | None:
    """Append the accepted gated values to the history (atomically, keeping the newest ``keep``);
    None when the run gated nothing (no line is written)."""
    path = Path(path)
    entry = entry_of(gates, date)
    if not entry["values"]:
        return None
    entries = [*read_history(path), entry][-keep:]
    write_atomic(path, "".join(json.dumps(e, sort_keys=True) + "\n" for e in entries))
    return path


def series(history: Sequence[Mapping[str, Any]], suite: str, candidate: str, metric: str) -> list[dict[str, Any]]:
    """``[{"date", "value"}]`` of one gated metric across the history, oldest first."""
    points = []
    for entry in history:
        value = ((entry["values"].get(suite) or {}).get(candidate) or {}).get(metric)
        if isinstance(value, (int, float)) and math.isfinite(value):
            points.append({"date": entry["date"], "value": float(value)})
    return points


def drift(current: float, metric: str, points: Sequence[Mapping[str, Any]], max_drift: float,
          relative: bool) -> dict[str, Any] | None:
    """The drift of ``current`` from the oldest kept value, and whether it exceeds ``max_drift``
    (in the metric's direction: for TER a rise is a loss). None without history."""
    if not points or not math.isfinite(current):
        return None
    oldest = points[0]
    sign = 1.0 if METRICS.get(metric) is None or METRICS[metric].higher_is_better else -1.0
    allowed = max_drift * abs(oldest["value"]) if relative else max_drift
    change = current - oldest["value"]
    return {"oldest": oldest["value"], "oldest_date": oldest["date"], "change": change, "max_drift": allowed,
            "failed": sign * change < -allowed - 1e-12}


def attach_history(records: Sequence[GateRecord], history: Sequence[Mapping[str, Any]],
                   drifts: Mapping[str, tuple[float, bool]]) -> None:
    """Put each record's history (the trend the report draws) and its ``max_drift`` check in its details."""
    for record in records:
        points = series(history, record.suite, record.candidate, record.metric)
        if points:
            record.details["history"] = points
        if record.metric in drifts:
            max_drift, relative = drifts[record.metric]
            checked = drift(record.current, record.metric, points, max_drift, relative)
            if checked is not None:
                record.details["drift"] = checked

"""Reading and writing the baseline file: schema-checked loads, atomic all-or-nothing updates.

Writes go to a temporary file in the same folder, are fsynced and then ``os.replace``d over
the old file, so an interrupted write leaves either the old or the new file, never half of one.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.errors import BaselineError
from harness.gate.baseline import (
    JSON_SCHEMA,
    Baseline,
    BaselineEntry,
    entry_from_result,
    library_versions,
)
from harness.gate.history import append_history, history_path
from harness.jsonio import write_atomic
from harness.results import RunState

UPDATE_HINT = "pass --ft-force to pytest (or --force to `ft-harness baseline accept`) to overwrite it"


class BaselineRefused(BaselineError):
    """An update would overwrite entries measured on a different eval set; nothing was written."""

    def __init__(self, message: str, refused: list[str]) -> None:
        super().__init__(message)
        self.refused = refused


@dataclass
class UpdateReport:
    """What an update did, entry by entry (``suite/candidate`` names)."""

    path: str
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    forced: list[str] = field(default_factory=list)
    written: bool = False

    def __str__(self) -> str:
        parts = [f"{len(names)} {label} ({', '.join(names)})"
                 for label, names in (("added", self.added), ("updated", self.updated),
                                      ("overwritten with a new eval set", self.forced))
                 if names]
        if self.unchanged:
            parts.append(f"{len(self.unchanged)} unchanged")
        action = "updated" if self.written else "left as it was"
        return f"baseline {self.path} {action}: " + ("; ".join(parts) or "no results to accept")


def dumps_baseline(baseline: Baseline) -> str:
    """The file's text: indented, sorted keys, trailing newline, no NaN (stable for review)."""
    try:
        return json.dumps(baseline.as_dict(), indent=2, sort_keys=True, ensure_ascii=False,
                          allow_nan=False) + "\n"
    except ValueError as exc:
        raise BaselineError(f"cannot write the baseline {baseline.path}: {exc}") from None


def line_of_key(text: str, path: Iterable[Any]) -> int:
    """Best-effort 1-based line of the key at ``path`` in a JSON text (followed key by key)."""
    position = 0
    for key in path:
        if not isinstance(key, str):
            break
        found = text.find(json.dumps(key, ensure_ascii=False) + ":", position)
        if found < 0:
            found = text.find(json.dumps(key, ensure_ascii=False), position)
        if found < 0:
            break
        position = found
    return text.count("\n", 0, position) + 1


def _non_finite(value: Any, where: list[Any]) -> tuple[list[Any], float] | None:
    """The path and value of the first NaN / Infinity in a parsed JSON document, or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return where, value
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        found = _non_finite(child, [*where, key])
        if found is not None:
            return found
    return None


def parse_baseline(text: str, *, path: str) -> Baseline:
    """Parse and schema-check the file's text; errors name the file, line and field.

    ``NaN`` and ``Infinity`` (which Python's JSON reader accepts) are refused: a NaN baseline
    value or score would switch its gate off, an infinite one would fail it forever.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BaselineError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from None
    found = _non_finite(data, [])
    if found is not None:
        field_path, value = found
        field_name = ".".join(str(p) for p in field_path)
        raise BaselineError(f"{path}:{line_of_key(text, field_path)}: field {field_name!r}: {value} is not a "
                            "finite number (NaN would switch this gate off, Infinity fail it forever); "
                            "write the measured value or accept the run again")
    import jsonschema

    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(JSON_SCHEMA).iter_errors(data))
    if error is not None:
        field_path = list(error.absolute_path)
        field_name = ".".join(str(p) for p in field_path) or "(top level)"
        line = line_of_key(text, field_path)
        hint = ""
        if field_path == ["schema_version"]:
            hint = f" (this harness reads schema version {JSON_SCHEMA['properties']['schema_version']['const']})"
        raise BaselineError(f"{path}:{line}: field {field_name!r}: {error.message}{hint}")
    return Baseline.from_dict(data, path=path)


def load_baseline(path: str | Path) -> Baseline:
    """The stored baseline; a missing file is an empty baseline (every metric: 'no baseline')."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Baseline(path=str(path), exists=False)
    except (OSError, UnicodeDecodeError) as exc:
        raise BaselineError(f"{path}: cannot read the baseline: {exc}") from None
    return parse_baseline(text, path=str(path))


def _check_result_ids(entry: BaselineEntry, example_ids: list[str]) -> None:
    if len(set(example_ids)) != len(example_ids):
        counts = Counter(example_ids)
        duplicate = next(i for i in example_ids if counts[i] > 1)
        raise BaselineError(f"{entry.suite}/{entry.candidate}: example id {duplicate!r} occurs more "
                            "than once in the eval split; per-example scores need unique ids")
    for name, metric in entry.metrics.items():
        for example_id, score in (metric.scores or {}).items():
            if not math.isfinite(score):
                raise BaselineError(f"{entry.suite}/{entry.candidate}: metric {name!r} has a "
                                    f"non-finite score ({score}) for example {example_id!r}")


def update_baseline(path: str | Path, state: RunState, *, suites: Iterable[str] | None = None,
                    force: bool = False, date: str | None = None, dry_run: bool = False) -> UpdateReport:
    """Accept the run's results into the baseline file, all or nothing.

    An entry whose eval-set fingerprint differs from the stored one is refused unless
    ``force``; if any entry is refused, :class:`BaselineRefused` is raised and the file is
    left untouched. Entries whose results did not change keep their old date. A written update
    also appends the run's gated values to ``history.jsonl`` beside the baseline. ``dry_run`` says
    what would be written (``written`` true when the file would change) and writes nothing.
    """
    path = Path(path)
    wanted = set(suites) if suites is not None else None
    results = [r for r in state.results if wanted is None or r.suite in wanted]
    if wanted is not None:
        missing = sorted(wanted - {r.suite for r in results})
        if missing:
            known = ", ".join(state.suites()) or "none"
            raise BaselineError(f"no results for suite(s) {', '.join(missing)} in this run (suites with "
                                f"results: {known})")
    if not results:
        raise BaselineError(f"nothing to accept into {path}: the run recorded no results")
    baseline = load_baseline(path)
    report = UpdateReport(path=str(path))
    versions = library_versions()
    today = date or datetime.now(timezone.utc).date().isoformat()
    refused: list[str] = []
    entries = dict(baseline.entries)
    for result in sorted(results, key=lambda r: (r.suite, r.candidate)):
        collateral = [c for c in state.collateral if (c.suite, c.candidate) == (result.suite, result.candidate)]
        entry = entry_from_result(result, versions=versions, date=today, collateral=collateral)
        _check_result_ids(entry, result.example_ids)
        name = f"{result.suite}/{result.candidate}"
        old = baseline.entry(result.suite, result.candidate)
        if old is None:
            report.added.append(name)
        elif old.split_fingerprint != entry.split_fingerprint:
            if not force:
                refused.append(f"{name}: eval set changed, fingerprint {old.split_fingerprint[:12]} → "
                               f"{entry.split_fingerprint[:12]}")
                continue
            report.forced.append(name)
        elif old.same_scores(entry):
            report.unchanged.append(name)
            continue
        else:
            report.updated.append(name)
        entries[(result.suite, result.candidate)] = entry
    if refused:
        lines = "\n  ".join(refused)
        raise BaselineRefused(f"{path}: refused to update the baseline (nothing was written):\n  {lines}\n"
                              f"The scores are not comparable with the accepted ones; if the new eval "
                              f"set is intended, {UPDATE_HINT}.", refused)
    if report.added or report.updated or report.forced:
        new = Baseline(entries=entries, path=str(path), exists=True)
        text = dumps_baseline(new)
        report.written = True
        if dry_run:
            return report
        write_atomic(path, text)

        accepted = [g for g in state.gates if wanted is None or g.suite in wanted]
        append_history(history_path(path), accepted, datetime.now(timezone.utc).isoformat(timespec="seconds"))
    return report

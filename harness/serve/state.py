"""Reading a state directory back: ``state.json`` checked field by field, event logs replayed.

Version 1 (absolute paths, events inside ``state.json``) is migrated to the current layout;
any other damage is a :class:`~harness.serve.records.StateError` naming the file, and the
position in it, so ``ft-harness serve`` exits 3 with a message instead of a traceback.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path, PurePath
from typing import Any

from harness.jsonio import strict_dumps, write_atomic
from harness.serve.records import STATE_VERSION, FileRecord, JobRecord, StateError

log = logging.getLogger(__name__)
_ADVICE = "restore it from a backup or move it away to start with an empty state"


def read_state(state_path: Path, events_dir: Path) -> tuple[dict[str, FileRecord], dict[str, JobRecord]] | None:
    """Files and jobs of a state directory (None when it has no ``state.json`` yet)."""
    if not state_path.exists():
        return None
    try:
        data = json.loads(state_path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise StateError(f"{state_path}: not UTF-8 text; {_ADVICE}") from None
    except json.JSONDecodeError as exc:
        raise StateError(f"{state_path}: not valid JSON (line {exc.lineno}, column {exc.colno}: "
                         f"{exc.msg}); {_ADVICE}") from None
    except OSError as exc:
        raise StateError(f"{state_path}: cannot be read: {exc.strerror}") from None
    if not isinstance(data, dict):
        raise StateError(f"{state_path}: expected a JSON object with 'version', 'files' and 'jobs', "
                         f"got {type(data).__name__}; {_ADVICE}")
    version = data.get("version")
    if version not in (1, STATE_VERSION):
        raise StateError(f"{state_path}: state version {version!r} is not one this server reads "
                         f"(1 or {STATE_VERSION}); it was written by another ft-harness version")
    files = {r.id: r for r in _records(state_path, data, "files", FileRecord)}
    jobs = {r.id: r for r in _records(state_path, data, "jobs", JobRecord)}
    if version == 1:
        _migrate_v1(files, jobs, events_dir)
    for job in jobs.values():
        job.events = read_events(events_dir / f"{job.id}.jsonl")
    return files, jobs


def _records(state_path: Path, data: dict[str, Any], key: str, kind: type) -> list[Any]:
    items = data.get(key, [])
    if not isinstance(items, list):
        raise StateError(f"{state_path}: '{key}' must be a list; {_ADVICE}")
    names = {f.name for f in dataclasses.fields(kind)}
    required = {f.name for f in dataclasses.fields(kind)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    records = []
    for index, item in enumerate(items):
        where = f"{state_path}: {key}[{index}]"
        if not isinstance(item, dict):
            raise StateError(f"{where}: expected an object; {_ADVICE}")
        if missing := sorted(required - set(item)):
            raise StateError(f"{where}: missing {', '.join(missing)}; {_ADVICE}")
        if unknown := sorted(set(item) - names):
            raise StateError(f"{where}: unknown field(s) {', '.join(unknown)}; {_ADVICE}")
        record = kind(**item)
        if not isinstance(record.id, str) or not record.id:
            raise StateError(f"{where}.id: expected a non-empty string; {_ADVICE}")
        records.append(record)
    return records


def _migrate_v1(files: dict[str, FileRecord], jobs: dict[str, JobRecord], events_dir: Path) -> None:
    """Version 1 stored absolute paths and inline events; the layout inside the folder is the same."""
    for record in files.values():
        record.path = f"files/{PurePath(record.path).name}"
    for job in jobs.values():
        if job.adapter_dir:
            job.adapter_dir = f"models/{PurePath(job.adapter_dir).name}"
        log_path = events_dir / f"{job.id}.jsonl"
        if job.events and not log_path.exists():
            log_path.write_text("".join(strict_dumps(e, sort_keys=True) + "\n" for e in job.events),
                                encoding="utf-8")


def read_events(path: Path) -> list[dict[str, Any]]:
    """A job's events in order; a torn last line (a crash mid-append) is dropped and cut off."""
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.splitlines()
    events = []
    torn = bool(text) and not text.endswith("\n")
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            event = None
        if not isinstance(event, dict) or "id" not in event:
            if number == len(lines):
                log.warning("%s:%d: incomplete last event dropped", path, number)
                torn = True
                continue
            raise StateError(f"{path}:{number}: not a fine-tuning event; {_ADVICE}")
        events.append(event)
    if torn:  # the next append must start on a line of its own
        write_atomic(path, "".join(strict_dumps(e, sort_keys=True) + "\n" for e in events))
    return events

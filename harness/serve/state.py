"""Reading a state directory back: ``state.json`` checked field by field, event logs replayed.

Version 1 (absolute paths, events inside ``state.json``) is migrated to the current layout;
any other damage is a :class:`~harness.serve.records.StateError` naming the file, and the
position in it, so ``ft-harness serve`` exits 3 with a message instead of a traceback.

Every field of every record is type-checked, and every stored path must stay inside its folder
of the state directory (uploads in ``files/``, adapters in ``models/``). A record that fails is
refused, not dropped: a state that points outside its folder was edited or damaged, and dropping the
record would silently lose a file or job that clients still hold the id of; the operator decides.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path, PurePath
from typing import Any

from harness.jsonio import strict_dumps, write_atomic
from harness.serve.records import ACTIVE, STATE_VERSION, TERMINAL, FileRecord, JobRecord, StateError

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
    if type(version) is not int or version not in (1, STATE_VERSION):
        raise StateError(f"{state_path}: state version {version!r} is not one this server reads "
                         f"(1 or {STATE_VERSION}); it was written by another ft-harness version")
    files = {r.id: r for r in _records(state_path, data, "files", FileRecord)}
    jobs = {r.id: r for r in _records(state_path, data, "jobs", JobRecord)}
    if version == 1:
        _migrate_v1(files, jobs, events_dir)
    root = state_path.parent.resolve()
    for index, record in enumerate(files.values()):
        _confine(root / "files", record.path, f"{state_path}: files[{index}] ({record.id}).path")
    for index, job in enumerate(jobs.values()):
        if job.adapter_dir is not None:
            _confine(root / "models", job.adapter_dir, f"{state_path}: jobs[{index}] ({job.id}).adapter_dir")
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
        for name, value in item.items():
            expected = _FIELD_TYPES[kind.__name__][name]
            if not _matches(expected, value):
                raise StateError(f"{where}.{name}: expected {_EXPECTED[expected]}, got {_show(value)}; {_ADVICE}")
        records.append(kind(**item))
    return records


# The type of every stored field: checked at load, so no request later meets a malformed record.
_FIELD_TYPES: dict[str, dict[str, str]] = {
    "FileRecord": {"id": "id", "bytes": "count", "created_at": "count", "filename": "str", "purpose": "str",
                   "path": "str", "status": "str"},
    "JobRecord": {"id": "id", "created_at": "count", "model": "str", "training_file": "str",
                  "validation_file": "str?", "hyperparameters": "object", "seed": "int", "suffix": "str?",
                  "metadata": "strings?", "status": "status", "error": "object?", "fine_tuned_model": "str?",
                  "finished_at": "count?", "trained_tokens": "count?", "result_files": "ids",
                  "estimated_finish": "count?", "adapter_dir": "str?", "sequence": "count",
                  "events": "objects", "checkpoints": "objects"},
}
_EXPECTED = {"id": "a non-empty string", "str": "a string", "str?": "a string or null", "count": "an integer >= 0",
             "count?": "an integer >= 0 or null", "int": "an integer", "object": "an object",
             "object?": "an object or null", "strings?": "an object of strings or null",
             "ids": "a list of strings", "objects": "a list of objects",
             "status": f"one of {', '.join(ACTIVE + TERMINAL)}"}


def _is_int(value: Any) -> bool:
    return type(value) is int  # a boolean is not a number here


def _matches(expected: str, value: Any) -> bool:
    if expected.endswith("?") and value is None:
        return True
    base = expected.rstrip("?")
    return {
        "id": lambda: isinstance(value, str) and bool(value),
        "str": lambda: isinstance(value, str),
        "count": lambda: _is_int(value) and value >= 0,
        "int": lambda: _is_int(value),
        "object": lambda: isinstance(value, dict) and all(isinstance(k, str) for k in value),
        "strings": lambda: isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str)
                                                           for k, v in value.items()),
        "ids": lambda: isinstance(value, list) and all(isinstance(v, str) for v in value),
        "objects": lambda: isinstance(value, list) and all(isinstance(v, dict) for v in value),
        "status": lambda: value in ACTIVE + TERMINAL,
    }[base]()


def _show(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _confine(folder: Path, relative: str, where: str) -> None:
    """Refuse a stored path that is absolute or leads out of ``folder`` (links followed)."""
    folder = folder.resolve()
    if PurePath(relative).is_absolute() or not (folder.parent / relative).resolve().is_relative_to(folder):
        raise StateError(f"{where}: {relative!r} is outside the state directory's "
                         f"{folder.name}/ folder; {_ADVICE}")


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

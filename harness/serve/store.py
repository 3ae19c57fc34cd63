"""The server's files and fine-tuning jobs, in OpenAI's object shapes, optionally on disk.

With a state directory, files and jobs are written atomically to ``state.json`` (uploaded
bytes in ``files/``, trained adapters in ``models/``, every path relative to the state
directory, so a copied directory serves on its own); job events are appended to one JSONL log
per job in ``events/`` instead of rewriting the state. A restarted server keeps its files and
jobs; unfinished jobs are queued again. A damaged or unknown state is refused naming the file.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from harness.jsonio import strict_dumps, write_atomic
from harness.serve.records import (
    ACTIVE,
    ORGANIZATION,
    STATE_VERSION,
    TERMINAL,
    FileRecord,
    JobRecord,
    StateError,
    new_id,
    now,
)
from harness.serve.state import read_state

__all__ = ["ACTIVE", "ORGANIZATION", "STATE_VERSION", "TERMINAL", "FileRecord", "JobRecord", "StateError",
           "Store", "new_id", "now", "page"]


class Store:
    """Thread-safe registry of files and jobs; persisted when it has a state directory."""

    def __init__(self, root: Path, *, persist: bool) -> None:
        self.root = Path(root).resolve()
        self.persist = persist
        self.files_dir = self.root / "files"
        self.models_dir = self.root / "models"
        self.events_dir = self.root / "events"
        for folder in (self.files_dir, self.models_dir, self.events_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self.files: dict[str, FileRecord] = {}
        self.jobs: dict[str, JobRecord] = {}
        self._sequence = 0
        if persist:
            self._load()

    # -- paths -------------------------------------------------------------------------
    @property
    def state_path(self) -> Path:
        """Where the state is persisted."""
        return self.root / "state.json"

    def resolve(self, relative: str) -> Path:
        """An absolute path for a path stored relative to the state directory."""
        return self.root / relative

    def file_path(self, record: FileRecord) -> Path:
        """Where a file's bytes live."""
        return self.resolve(record.path)

    def _relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    # -- persistence -------------------------------------------------------------------
    def _load(self) -> None:
        state = read_state(self.state_path, self.events_dir)
        if state is None:
            return
        self.files, self.jobs = state
        self._sequence = max((j.sequence for j in self.jobs.values()), default=0)
        self.save()  # a version-1 state is rewritten once in the current layout

    def save(self) -> None:
        """Write files and jobs (without events) atomically; a no-op without a state directory."""
        if not self.persist:
            return
        with self.lock:
            jobs = []
            for job in self.jobs.values():
                record = asdict(job)
                record.pop("events")
                jobs.append(record)
            data = {"version": STATE_VERSION, "files": [asdict(f) for f in self.files.values()],
                    "jobs": jobs}
            write_atomic(self.state_path, strict_dumps(data, indent=1, sort_keys=True))

    def events_path(self, job_id: str) -> Path:
        """The append-only event log of one job."""
        return self.events_dir / f"{job_id}.jsonl"

    # -- files -------------------------------------------------------------------------
    def add_file(self, content: bytes, filename: str, purpose: str) -> FileRecord:
        """Store uploaded bytes and register the file."""
        file_id = new_id("file")
        path = self.files_dir / file_id
        path.write_bytes(content)
        record = FileRecord(file_id, len(content), now(), filename, purpose, self._relative(path))
        with self.lock:
            self.files[file_id] = record
            self.save()
        return record

    def add_result_file(self, text: str, filename: str) -> FileRecord:
        """Register a server-generated file (a job's step metrics CSV)."""
        return self.add_file(text.encode("utf-8"), filename, "fine-tune-results")

    def delete_file(self, file_id: str) -> None:
        """Forget a file and remove its bytes (only ever inside this state directory)."""
        with self.lock:
            record = self.files.pop(file_id)
            path = self.file_path(record)
            if path.resolve().is_relative_to(self.files_dir):
                path.unlink(missing_ok=True)
            self.save()

    # -- jobs --------------------------------------------------------------------------
    def add_job(self, job: JobRecord) -> JobRecord:
        """Register a new job, numbered in creation order."""
        with self.lock:
            self._sequence += 1
            job.sequence = self._sequence
            self.jobs[job.id] = job
            self.save()
        return job

    def update_job(self, job_id: str, change: Callable[[JobRecord], None], *,
                   persist: bool = True) -> JobRecord:
        """Apply ``change`` to a job under the lock; persist unless it is a volatile field."""
        with self.lock:
            job = self.jobs[job_id]
            change(job)
            if persist:
                self.save()
            return job

    def set_adapter_dir(self, job: JobRecord, adapter_dir: Path) -> None:
        """Record a trained adapter's folder (relative to the state directory) on ``job``."""
        job.adapter_dir = self._relative(Path(adapter_dir).resolve())

    def add_event(self, job_id: str, message: str, *, level: str = "info",
                  data: dict[str, Any] | None = None, type: str = "message") -> None:
        """Append a ``fine_tuning.job.event`` to a job and to its event log (no state rewrite)."""
        event = {"id": new_id("ftevent"), "object": "fine_tuning.job.event", "created_at": now(),
                 "level": level, "message": message, "data": data or {}, "type": type}
        with self.lock:
            self.jobs[job_id].events.append(event)
            if self.persist:
                with self.events_path(job_id).open("a", encoding="utf-8") as handle:
                    handle.write(strict_dumps(event, sort_keys=True) + "\n")

    def jobs_newest_first(self, metadata: dict[str, str] | None = None) -> list[JobRecord]:
        """All jobs, newest first, optionally only those whose metadata match."""
        with self.lock:
            jobs = sorted(self.jobs.values(), key=lambda j: j.sequence, reverse=True)
        if metadata:
            jobs = [j for j in jobs
                    if all((j.metadata or {}).get(k) == v for k, v in metadata.items())]
        return jobs


def page(items: Iterable[dict[str, Any]], *, after: str | None, limit: int) -> dict[str, Any]:
    """A cursor page: the items after the one with id ``after``, at most ``limit`` of them."""
    items = list(items)
    if after is not None:
        ids = [item["id"] for item in items]
        items = items[ids.index(after) + 1:] if after in ids else []
    return {"object": "list", "data": items[:limit], "has_more": len(items) > limit}

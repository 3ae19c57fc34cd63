"""The server's files and fine-tuning jobs, in OpenAI's object shapes, optionally on disk.

With a state directory, every change is written atomically to ``state.json`` (uploaded bytes
in ``files/``, trained adapters in ``models/``), so a restarted server keeps its files and
jobs; unfinished jobs are queued again.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.jsonio import write_atomic

STATE_VERSION = 1
TERMINAL = ("succeeded", "failed", "cancelled")
ACTIVE = ("validating_files", "queued", "running")
ORGANIZATION = "org-local"


def new_id(prefix: str) -> str:
    """An OpenAI-style object id: ``prefix-`` and 24 random hex characters."""
    return f"{prefix}-{secrets.token_hex(12)}"


def now() -> int:
    """Unix time in whole seconds, as OpenAI reports it."""
    return int(time.time())


@dataclass
class FileRecord:
    """An uploaded file; ``path`` is where its bytes live on this server (never exposed)."""

    id: str
    bytes: int
    created_at: int
    filename: str
    purpose: str
    path: str
    status: str = "processed"

    def to_api(self) -> dict[str, Any]:
        """The ``FileObject`` the API returns."""
        return {"id": self.id, "object": "file", "bytes": self.bytes, "created_at": self.created_at,
                "filename": self.filename, "purpose": self.purpose, "status": self.status,
                "status_details": None, "expires_at": None}


@dataclass
class JobRecord:
    """A fine-tuning job with its events and checkpoints."""

    id: str
    created_at: int
    model: str
    training_file: str
    validation_file: str | None
    hyperparameters: dict[str, Any]
    seed: int
    suffix: str | None = None
    metadata: dict[str, str] | None = None
    status: str = "validating_files"
    error: dict[str, Any] | None = None
    fine_tuned_model: str | None = None
    finished_at: int | None = None
    trained_tokens: int | None = None
    result_files: list[str] = field(default_factory=list)
    estimated_finish: int | None = None
    adapter_dir: str | None = None
    sequence: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)

    def to_api(self) -> dict[str, Any]:
        """The ``FineTuningJob`` the API returns (``method`` mirrors the hyperparameters)."""
        return {
            "id": self.id, "object": "fine_tuning.job", "created_at": self.created_at,
            "error": self.error, "fine_tuned_model": self.fine_tuned_model,
            "finished_at": self.finished_at, "hyperparameters": dict(self.hyperparameters),
            "model": self.model, "organization_id": ORGANIZATION,
            "result_files": list(self.result_files), "seed": self.seed, "status": self.status,
            "trained_tokens": self.trained_tokens, "training_file": self.training_file,
            "validation_file": self.validation_file, "estimated_finish": self.estimated_finish,
            "integrations": [], "metadata": self.metadata, "user_provided_suffix": self.suffix,
            "method": {"type": "supervised",
                       "supervised": {"hyperparameters": dict(self.hyperparameters)}},
        }


class Store:
    """Thread-safe registry of files and jobs; persisted when it has a state directory."""

    def __init__(self, root: Path, *, persist: bool) -> None:
        self.root = Path(root)
        self.persist = persist
        self.files_dir = self.root / "files"
        self.models_dir = self.root / "models"
        self.files_dir.mkdir(parents=True, exist_ok=True)
        self.models_dir.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self.files: dict[str, FileRecord] = {}
        self.jobs: dict[str, JobRecord] = {}
        self._sequence = 0
        if persist:
            self._load()

    # -- persistence -------------------------------------------------------------------
    @property
    def state_path(self) -> Path:
        """Where the state is persisted."""
        return self.root / "state.json"

    def _load(self) -> None:
        if not self.state_path.exists():
            return
        data = json.loads(self.state_path.read_text(encoding="utf-8"))
        self.files = {f["id"]: FileRecord(**f) for f in data.get("files", [])}
        self.jobs = {j["id"]: JobRecord(**j) for j in data.get("jobs", [])}
        self._sequence = max((j.sequence for j in self.jobs.values()), default=0)

    def save(self) -> None:
        """Write the whole state atomically (a no-op without a state directory)."""
        if not self.persist:
            return
        with self.lock:
            data = {"version": STATE_VERSION,
                    "files": [asdict(f) for f in self.files.values()],
                    "jobs": [asdict(j) for j in self.jobs.values()]}
            write_atomic(self.state_path, json.dumps(data, indent=1, sort_keys=True))

    # -- files -------------------------------------------------------------------------
    def add_file(self, content: bytes, filename: str, purpose: str) -> FileRecord:
        """Store uploaded bytes and register the file."""
        file_id = new_id("file")
        path = self.files_dir / file_id
        path.write_bytes(content)
        record = FileRecord(file_id, len(content), now(), filename, purpose, str(path))
        with self.lock:
            self.files[file_id] = record
            self.save()
        return record

    def add_result_file(self, text: str, filename: str) -> FileRecord:
        """Register a server-generated file (a job's step metrics CSV)."""
        return self.add_file(text.encode("utf-8"), filename, "fine-tune-results")

    def delete_file(self, file_id: str) -> None:
        """Forget a file and remove its bytes."""
        with self.lock:
            record = self.files.pop(file_id)
            Path(record.path).unlink(missing_ok=True)
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

    def update_job(self, job_id: str, change: Callable[[JobRecord], None]) -> JobRecord:
        """Apply ``change`` to a job under the lock and persist."""
        with self.lock:
            job = self.jobs[job_id]
            change(job)
            self.save()
            return job

    def add_event(self, job_id: str, message: str, *, level: str = "info",
                  data: dict[str, Any] | None = None, type: str = "message") -> None:
        """Append a ``fine_tuning.job.event`` to a job."""
        event = {"id": new_id("ftevent"), "object": "fine_tuning.job.event", "created_at": now(),
                 "level": level, "message": message, "data": data or {}, "type": type}
        self.update_job(job_id, lambda job: job.events.append(event))

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

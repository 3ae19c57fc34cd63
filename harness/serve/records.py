"""The server's records in OpenAI's object shapes: files and fine-tuning jobs, ids and clocks."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from harness.errors import HarnessError

STATE_VERSION = 2  # 1: absolute paths and events inside state.json
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
    """An uploaded file; ``path`` is where its bytes live, relative to the state dir (never exposed)."""

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
    adapter_dir: str | None = None  # relative to the state directory
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


class StateError(HarnessError):
    """The state directory cannot be used (damaged ``state.json``, unknown version)."""

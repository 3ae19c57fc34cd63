"""OpenAI-compatible HTTP server for local models: chat, completions, files and fine-tuning jobs.

``serve_in_thread(backend)`` runs it on 127.0.0.1 with a free port for tests;
``ft-harness serve`` runs it in the foreground. Heavy imports happen only when used.
"""

from __future__ import annotations

from typing import Any

__all__ = ["FaultConfig", "LocalBackend", "ServerSettings", "TrainingDefaults", "run_forever",
           "serve_in_thread"]

_EXPORTS = {
    "FaultConfig": "harness.serve.faults",
    "LocalBackend": "harness.serve.backend",
    "ServerSettings": "harness.serve.settings",
    "TrainingDefaults": "harness.serve.jobs",
    "run_forever": "harness.serve.runtime",
    "serve_in_thread": "harness.serve.runtime",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'harness.serve' has no attribute {name!r}")

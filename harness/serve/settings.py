"""Limits and options of one server instance (what ``ft-harness serve`` flags set)."""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.serve.faults import FaultConfig


@dataclass(frozen=True)
class ServerSettings:
    """Limits and options of one server instance."""

    api_key: str | None = field(default=None, repr=False)
    max_upload_bytes: int = 50 * 1024 * 1024
    default_max_tokens: int = 64
    max_tokens_limit: int = 1024
    faults: FaultConfig = field(default_factory=FaultConfig)

"""Findings: one problem (error) or concern (warning) about a dataset, with its location.

A finding renders as ``path:LINE: field 'messages[1].role': message`` (``path: row N: ...``
for CSV / Parquet / hub rows, which have no stable text line); in listings a warning reads
``path:LINE: warning: field ...: message``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from harness.errors import DatasetError

ERROR = "error"
WARNING = "warning"

#: How many findings a report lists before it summarises the rest as "... and N more".
DEFAULT_FINDINGS_CAP = 100


@dataclass(frozen=True)
class Finding:
    """One located problem: ``severity`` is "error" or "warning"; ``code`` is a stable slug."""

    severity: str
    code: str
    message: str
    path: str = ""
    line: int | None = None
    field: str | None = None
    unit: str = "line"  # "line" for text files, "row" for CSV / Parquet / hub rows

    @property
    def location(self) -> str:
        """``path:LINE`` or ``path: row N`` (just ``path`` when the finding is file-wide)."""
        if self.line is None:
            return self.path
        if self.unit == "row":
            return f"{self.path}: row {self.line}"
        return f"{self.path}:{self.line}"

    def __str__(self) -> str:
        field_part = f"field {self.field!r}: " if self.field else ""
        location = self.location
        prefix = f"{location}: " if location else ""
        return f"{prefix}{field_part}{self.message}"

    def display(self) -> str:
        """``str(self)`` for errors; warnings get ``warning:`` after the location (as compilers do)."""
        if self.severity == ERROR:
            return str(self)
        field_part = f"field {self.field!r}: " if self.field else ""
        location = f"{self.location}: " if self.location else ""
        return f"{location}{self.severity}: {field_part}{self.message}"

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form (used by ``--json`` output)."""
        return {"severity": self.severity, "code": self.code, "message": self.message,
                "path": self.path, "line": self.line, "unit": self.unit, "field": self.field,
                "text": str(self)}


def render_findings(findings: Iterable[Finding], cap: int = DEFAULT_FINDINGS_CAP) -> list[str]:
    """Render findings as text lines, at most ``cap`` of them plus an "... and N more" line."""
    findings = list(findings)
    lines = [f.display() for f in findings[:cap]]
    if len(findings) > cap:
        lines.append(f"... and {len(findings) - cap} more")
    return lines


def errors_of(findings: Iterable[Finding]) -> list[Finding]:
    """Only the findings of severity "error"."""
    return [f for f in findings if f.severity == ERROR]


def dataset_error(findings: list[Finding], path: str, cap: int = DEFAULT_FINDINGS_CAP):
    """Build one :class:`DatasetError` that lists every error (up to ``cap``) in ``findings``."""

    errors = errors_of(findings)
    lines = render_findings(errors, cap)
    noun = "error" if len(errors) == 1 else "errors"
    text = f"{len(errors)} {noun} in dataset:\n" + "\n".join(f"  {line}" for line in lines)
    err = DatasetError(text, problems=[str(f) for f in errors])
    err.path = path
    if errors:
        err.line = errors[0].line
        err.field = errors[0].field
    return err

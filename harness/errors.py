"""Error types the harness raises; each says where the problem is and what was expected.

Every error a user can cause derives from :class:`HarnessError`, so the pytest plugin and
the CLI can tell a *harness error* (bad data, failed job, crashed training) from a
*regression* (the gate) and from an ordinary test failure.
"""

from __future__ import annotations


class HarnessError(Exception):
    """A problem the harness detected before or while producing numbers (not a regression)."""

    category = "harness error"


class DatasetError(HarnessError):
    """A dataset file is unusable; the message names file, line and field."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None,
                 field: str | None = None, problems: list[str] | None = None) -> None:
        self.path = path
        self.line = line
        self.field = field
        self.problems = list(problems or [])
        where = ":".join(str(p) for p in (path, line) if p is not None)
        prefix = f"{where}: " if where else ""
        suffix = f" (field {field!r})" if field else ""
        super().__init__(f"{prefix}{message}{suffix}")


class SpecError(HarnessError):
    """The candidate spec is invalid; the message names file and key."""


class TrainingError(HarnessError):
    """Training a candidate failed (crash, OOM, failed remote job)."""


class CacheError(HarnessError):
    """A cache entry is corrupt or unreadable (it is rebuilt, never used)."""


class BaselineError(HarnessError):
    """The baseline file is unreadable or an update was refused."""

"""Files of one JSON object per line (recorded outputs, saved run outputs), read with every problem
named by file:line, so each reader only checks its own fields."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.errors import DatasetError


def read_object_lines(path: Path, what: str) -> tuple[list[tuple[int, dict[str, Any]]], list[str]]:
    """``(line number, object)`` for each non-blank line of ``path``, and a ``file:line`` problem for each
    line that is not a JSON object; an unreadable file (missing, a folder, not UTF-8) raises naming ``what``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DatasetError(f"{what} file not found", path=str(path)) from None
    except IsADirectoryError:
        raise DatasetError(f"is a directory, not the {what} file", path=str(path)) from None
    except UnicodeDecodeError as exc:
        raise DatasetError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", path=str(path)) from None
    rows: list[tuple[int, dict[str, Any]]] = []
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{path}:{number}: not valid JSON ({exc.msg} at column {exc.colno})")
            continue
        if not isinstance(row, dict):
            problems.append(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
            continue
        rows.append((number, row))
    return rows, problems

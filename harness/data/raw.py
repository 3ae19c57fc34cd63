"""Raw rows read from a dataset source, and the byte-level checks every text reader shares.

The bottom of the reading stack: :mod:`harness.data.reading` (text formats, dispatch) and
:mod:`harness.data.columnar` (CSV, Parquet, hub datasets) both build on these types.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from harness.data.findings import ERROR, Finding


@dataclass(frozen=True)
class Row:
    """One raw record and where it came from (``unit`` is "line" or "row")."""

    number: int
    record: Any
    unit: str = "line"


@dataclass
class RawFile:
    """The rows read from one source plus the problems met while reading it."""

    path: str
    rows: list[Row]
    findings: list[Finding]
    reader: str


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(text: str) -> Any:
    """``json.loads`` that rejects NaN / Infinity (OpenAI and most tools refuse them)."""
    return json.loads(text, parse_constant=_reject_constant)


def file_error(code: str, message: str, path: str, line: int | None = None) -> Finding:
    """An error finding about the file as a whole, or one line of it."""
    return Finding(ERROR, code, message, path=path, line=line)


def decode_lines(data: bytes, path: str) -> tuple[list[tuple[int, str]], list[Finding]]:
    """Split bytes into (line number, text) pairs; report NUL bytes and invalid UTF-8 by line."""
    findings: list[Finding] = []
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return [], [file_error("encoding", "file is UTF-16 encoded; save it as UTF-8", path, 1)]
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    lines: list[tuple[int, str]] = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if b"\x00" in raw:
            column = raw.index(b"\x00") + 1
            findings.append(file_error(
                "binary", f"binary data: NUL byte at column {column} (not a text file?)",
                path, number))
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            findings.append(file_error(
                "encoding", f"invalid UTF-8: byte 0x{raw[exc.start]:02x} at column "
                f"{exc.start + 1} (save the file as UTF-8)", path, number))
            continue
        lines.append((number, text.removesuffix("\r")))
    return lines, findings

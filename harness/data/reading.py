"""Read a dataset file into raw rows (record + line / row number), reporting every problem.

Text formats are checked byte by byte first (missing file, directory, empty file, NUL
bytes, invalid UTF-8) and JSON Lines are parsed line by line here, so an error names the
exact line; CSV, TSV and Parquet files and hub datasets are read through ``datasets``. A file
is read by its extension (:data:`SUFFIX_READERS`); one without an extension is sniffed
(Parquet by its magic bytes, else JSON Lines); any other extension is refused, naming the
supported ones.

JSON (arrays and JSON Lines) is parsed with :mod:`json` rather than ``datasets``' JSON
loader on purpose: that loader unifies records into one Arrow schema, filling missing keys
with null and failing on mixed types with a bare Arrow error, which would hide exactly the
per-record type problems validation must report by line. Each array element keeps the
line it starts on. Nothing here raises on bad input: problems come back as
:class:`Finding` objects.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from harness.data.columnar import read_columnar, read_hub
from harness.data.findings import Finding
from harness.data.raw import RawFile, Row, decode_lines, file_error, parse_json

__all__ = ["SUFFIX_READERS", "RawFile", "Row", "decode_lines", "parse_json", "read_source",
           "read_text_bytes"]

#: File suffixes and the reader that handles them.
SUFFIX_READERS = {
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".tsv": "tsv",
    ".parquet": "parquet", ".pq": "parquet", ".txt": "text",
}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def read_source(path: str | Path, reader: str | None = None, *, split: str | None = None
                ) -> RawFile:
    """Read ``path`` (a file, or a hub dataset id when no such file exists) into raw rows.

    ``split`` names the hub split to read ("train" when not given).
    """
    path_str = str(path)
    p = Path(path_str)
    if reader is None:
        reader = SUFFIX_READERS.get(p.suffix.lower())
    try:
        exists, is_dir, is_file = p.exists(), p.is_dir(), p.is_file()
    except (OSError, ValueError) as exc:  # embedded NUL, name too long, permission
        reason = getattr(exc, "strerror", None) or str(exc)
        return RawFile(path_str, [], [file_error("unreadable", f"cannot access path: {reason}",
                                                  path_str)], reader or "?")
    if not exists:
        if reader is None and _HUB_ID.match(path_str):
            return read_hub(path_str, split)
        return RawFile(path_str, [], [file_error("missing_file", "file not found", path_str)],
                       reader or "?")
    if is_dir:
        return RawFile(path_str, [], [file_error(
            "directory", "is a directory, expected a dataset file", path_str)], reader or "?")
    if not is_file:
        return RawFile(path_str, [], [file_error(
            "not_a_file", "not a regular file (a device or pipe?)", path_str)], reader or "?")
    if reader is None and p.suffix:
        return RawFile(path_str, [], [file_error(
            "unknown_format", f"unknown file extension {p.suffix!r}; supported: "
            f"{', '.join(SUFFIX_READERS)} (or no extension: Parquet or JSON Lines, sniffed)", path_str)], "?")
    if reader is None:
        reader = _sniff_reader(p)
    if reader in ("csv", "tsv", "parquet"):
        return read_columnar(path_str, reader)
    try:
        data = p.read_bytes()
    except OSError as exc:
        return RawFile(path_str, [], [file_error("unreadable", f"cannot read file: {exc.strerror}",
                                                  path_str)], reader)
    return read_text_bytes(data, path_str, reader)


def _sniff_reader(p: Path) -> str:
    """Reader for a file without a known suffix: Parquet by its magic bytes, else JSON Lines."""
    try:
        with p.open("rb") as handle:
            magic = handle.read(4)
    except OSError:
        return "jsonl"
    return "parquet" if magic == b"PAR1" else "jsonl"


def read_text_bytes(data: bytes, path: str, reader: str) -> RawFile:
    """Parse the bytes of a JSONL, JSON or plain-text file into rows."""
    if not data.strip():
        return RawFile(path, [], [file_error("empty_file", "empty file: no records", path)], reader)
    lines, findings = decode_lines(data, path)
    if reader == "json" and findings:  # a JSON document with undecodable lines: stop here
        return RawFile(path, [], findings, reader)
    if reader == "json":
        rows, more = _read_json_document(lines, path)
    elif reader == "text":
        rows, more = _read_text_lines(lines), []
    else:
        rows, more = _read_json_lines(lines, path)
    findings.extend(more)
    if not rows and not findings:
        findings.append(file_error("empty_file", "empty file: no records", path))
    return RawFile(path, rows, findings, reader)


def _read_text_lines(lines: list[tuple[int, str]]) -> list[Row]:
    return [Row(n, {"text": text}) for n, text in lines if text.strip()]


def _json_problem(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"invalid JSON: {exc.msg} (column {exc.colno})"
    if isinstance(exc, RecursionError):
        return "invalid JSON: nested too deeply"
    return f"invalid JSON: {exc}"


def _read_json_lines(lines: list[tuple[int, str]], path: str) -> tuple[list[Row], list[Finding]]:
    rows: list[Row] = []
    findings: list[Finding] = []
    for number, text in lines:
        if not text.strip():
            continue
        try:
            rows.append(Row(number, parse_json(text)))
        except (ValueError, RecursionError) as exc:
            message = _json_problem(exc)
            if number == 1 and text.lstrip().startswith("[") and not text.rstrip().endswith("]"):
                message += "; the file looks like a JSON array: name it .json"
            findings.append(file_error("invalid_json", message, path, number))
    return rows, findings


def _read_json_document(lines: list[tuple[int, str]], path: str
                        ) -> tuple[list[Row], list[Finding]]:
    """A ``.json`` file: an array of records, one object, or (like ``datasets``) JSON Lines."""
    text = "\n".join(t for _, t in lines)
    try:
        value = parse_json(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":  # several top-level values: JSON Lines named .json
            return _read_json_lines(lines, path)
        line = lines[min(exc.lineno, len(lines)) - 1][0] if lines else 1
        return [], [file_error("invalid_json", f"invalid JSON: {exc.msg} (column {exc.colno})",
                                path, line)]
    except (ValueError, RecursionError) as exc:
        return [], [file_error("invalid_json", _json_problem(exc), path, 1)]
    if isinstance(value, list):
        starts = _array_element_lines(text)
        return [Row(lines[start - 1][0], item) for start, item in zip(starts, value, strict=True)], []
    return [Row(lines[0][0], value)], []


def _skip(pattern: re.Pattern[str], text: str, start: int) -> int:
    """The end of ``pattern``'s match at ``start`` (``start`` itself when it does not match)."""
    found = pattern.match(text, start)
    return found.end() if found else start


def _array_element_lines(text: str) -> list[int]:
    """The 1-based line on which each element of a (valid) top-level JSON array starts."""
    decoder = json.JSONDecoder()
    ws = re.compile(r"\s*")
    i = _skip(ws, text, 0) + 1  # past "["
    i = _skip(ws, text, i)
    starts: list[int] = []
    if text[i] == "]":
        return starts
    while True:
        starts.append(text.count("\n", 0, i) + 1)
        _, end = decoder.raw_decode(text, i)
        i = _skip(ws, text, end)
        if text[i] == "]":
            return starts
        i = _skip(ws, text, i + 1)  # past ","

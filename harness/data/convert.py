"""Convert dataset files between chat and instruction form (and between file types).

Keys that belong to no format (``id``, ``label``, metadata) are carried over unchanged, so
converting a file and converting it back gives the original records (see
:mod:`harness.data.formats` for the one ambiguity: an instruction containing a blank line).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.data.findings import ERROR, Finding, dataset_error
from harness.data.formats import (
    CHAT,
    INSTRUCTION,
    PROMPT_COMPLETION,
    TEXT,
    from_messages,
    normalise_format,
    to_messages,
)
from harness.data.loading import load_split
from harness.data.records import Example
from harness.errors import DatasetError
from harness.jsonio import atomic_path, strict_dumps

#: The keys each format owns; every other key of a record is carried across a conversion.
FORMAT_KEYS = {CHAT: ("messages",), INSTRUCTION: ("instruction", "input", "output", "system"),
               PROMPT_COMPLETION: ("prompt", "completion"), TEXT: ("text",)}
TARGETS = (CHAT, INSTRUCTION)


@dataclass(frozen=True)
class ConversionResult:
    """What a conversion wrote."""

    out_path: str
    n_records: int
    source_formats: dict[str, int]
    target: str


def convert_example(example: Example, to: str) -> dict[str, Any]:
    """The record for ``example`` in format ``to``, carrying over non-format keys.

    A record already in format ``to`` whose conversation was not changed on loading (no
    ``system`` added) is returned as it was read.
    """
    to = normalise_format(to)
    record = example.meta.get("record")
    source = example.meta.get("format")
    if isinstance(record, dict) and source == to and _unchanged(example):
        return dict(record)
    converted = from_messages(list(example.messages), to)
    extras = {k: v for k, v in (record or {}).items() if k not in FORMAT_KEYS.get(str(source), ())}
    clashes = sorted(set(extras) & set(FORMAT_KEYS[to]))
    if clashes:
        raise ValueError(f"the record's own key(s) {', '.join(map(repr, clashes))} would be "
                         f"overwritten by the {to} form")
    return {**extras, **converted}


def _unchanged(example: Example) -> bool:
    record, source = example.meta["record"], example.meta["format"]
    return to_messages(record, source) == list(example.messages)


def convert_examples(examples: Sequence[Example], to: str) -> tuple[list[dict[str, Any]],
                                                                     list[Finding]]:
    """Convert every example; conversations that do not fit ``to`` become findings."""
    records, findings = [], []
    for example in examples:
        try:
            records.append(convert_example(example, to))
        except ValueError as exc:
            findings.append(Finding(ERROR, "convert", f"cannot convert to {to}: {exc}",
                                    path=example.source, line=example.line, field="messages",
                                    unit=example.meta.get("unit", "line")))
    return records, findings


def write_records(records: list[dict[str, Any]], out_path: str | Path) -> None:
    """Write records atomically as JSONL, JSON (array), CSV or Parquet, by the file suffix."""
    out = Path(out_path)
    suffix = out.suffix.lower()
    if out.is_dir():
        raise DatasetError("output is a directory", path=str(out))
    with atomic_path(out) as temp:
        if suffix == ".json":
            temp.write_text(strict_dumps(records, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        elif suffix == ".csv":
            _write_csv(records, str(temp))
        elif suffix in (".parquet", ".pq"):
            _write_parquet(records, str(temp), str(out))
        else:
            temp.write_text("".join(strict_dumps(r, ensure_ascii=False) + "\n" for r in records),
                            encoding="utf-8")


def _write_csv(records: list[dict[str, Any]], path: str) -> None:
    import pandas as pd

    rows = [{k: json.dumps(v, ensure_ascii=False) if isinstance(v, (list, dict)) else v
             for k, v in r.items()} for r in records]
    pd.DataFrame(rows).to_csv(path, index=False)


def _write_parquet(records: list[dict[str, Any]], path: str, shown: str) -> None:
    from datasets import Dataset

    try:
        Dataset.from_list(records).to_parquet(path)
    except Exception as exc:  # mixed value types Arrow cannot unify
        raise DatasetError(f"cannot write Parquet: {type(exc).__name__}: {exc}",
                           path=shown) from None


def convert_file(in_path: str | Path, out_path: str | Path, *, to: str,
                 system: str | None = None, format: str | None = None) -> ConversionResult:
    """Load and validate ``in_path``, convert every record to ``to``, write ``out_path``.

    Raises :class:`DatasetError` (listing every problem) and writes nothing when any record
    is invalid or cannot be expressed in the target format.
    """
    try:
        to = normalise_format(to)
    except ValueError as exc:
        raise DatasetError(str(exc), field="to") from None
    if to not in TARGETS:
        raise DatasetError(f"cannot convert to {to!r}: expected one of {', '.join(TARGETS)}",
                           field="to")
    split = load_split(in_path, system=system, format=format)
    records, findings = convert_examples(split.examples, to)
    if findings:
        raise dataset_error(findings, split.path)
    write_records(records, out_path)
    formats: dict[str, int] = {}
    for example in split.examples:
        formats[example.meta["format"]] = formats.get(example.meta["format"], 0) + 1
    return ConversionResult(str(out_path), len(records), formats, to)

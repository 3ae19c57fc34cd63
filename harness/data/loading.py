"""Load a dataset file into a validated :class:`Split` of chat :class:`Example` objects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.data.checks import Where, check_record
from harness.data.findings import ERROR, Finding, dataset_error, errors_of
from harness.data.fingerprint import fingerprint_examples
from harness.data.formats import normalise_format, to_messages
from harness.data.reading import RawFile, read_source
from harness.data.records import Example, Split
from harness.errors import DatasetError

CLASSIFICATION = "classification"


def split_name_for(path: str | Path) -> str:
    """Default split name: the file name without its suffix(es)."""
    name = Path(str(path)).name
    return name.split(".", 1)[0] or name


def examples_from_raw(raw: RawFile, *, name: str, format: str | None = None,
                      system: str | None = None, task: str | None = None
                      ) -> tuple[list[Example], list[Finding]]:
    """Check every raw row and convert the valid ones; returns examples and all findings.

    ``Example.id`` is the record's own ``id`` field when present, else ``f"{name}-{line}"``.
    ``meta`` holds the original ``record``, its ``format``, its ``metadata`` object (when it has
    one) and, for classification data or records with a ``label`` field, the ``label``.
    """
    fmt = normalise_format(format) if format else None
    findings = list(raw.findings)
    examples: list[Example] = []
    seen_ids: dict[str, int] = {}
    for row in raw.rows:
        where = Where(raw.path, row.number, row.unit)
        row_format, problems = check_record(row.record, where, fmt)
        findings += problems
        if errors_of(problems) or row_format is None:  # an unknown format is always reported as an error
            continue
        record: dict[str, Any] = row.record
        example_id = str(record["id"]) if "id" in record else f"{name}-{row.number}"
        if example_id in seen_ids:
            findings.append(where.error(
                "duplicate_id", f"id {example_id!r} already used on {row.unit} "
                f"{seen_ids[example_id]}", "id"))
            continue
        seen_ids[example_id] = row.number
        messages = to_messages(record, row_format, system)
        meta: dict[str, Any] = {"record": record, "format": row_format}
        if row.unit != "line":
            meta["unit"] = row.unit
        if "metadata" in record:  # named values slices read (by = "metadata")
            meta["metadata"] = {k: v for k, v in record["metadata"].items() if v is not None}
        if "label" in record:
            meta["label"] = str(record["label"])
        elif task == CLASSIFICATION:
            meta["label"] = Example(example_id, messages).reference
        examples.append(Example(example_id, messages, source=raw.path, line=row.number,
                                meta=meta))
    findings.sort(key=lambda f: (f.line is not None, f.line or 0))
    return examples, findings


def load_split(path: str | Path, *, name: str | None = None, format: str | None = None,
               system: str | None = None, task: str | None = None) -> Split:
    """Load, validate and convert a dataset file (or hub id) into a :class:`Split`.

    Raises :class:`DatasetError` listing every error (file, line, field) when any record is
    invalid; nothing is dropped silently. ``format`` overrides format detection, ``system``
    is added to conversations without a system prompt, ``task="classification"`` records the
    assistant reply as ``meta["label"]``.
    """
    try:
        fmt = normalise_format(format) if format else None
    except ValueError as exc:
        raise DatasetError(str(exc), path=str(path), field="format") from None
    split_name = name or split_name_for(path)
    raw = read_source(path, split=name)
    examples, findings = examples_from_raw(raw, name=split_name, format=fmt, system=system,
                                           task=task)
    if any(f.severity == ERROR for f in findings):
        raise dataset_error(findings, raw.path)
    return Split(name=split_name, path=raw.path, examples=examples,
                 fingerprint=fingerprint_examples(examples))

"""Row metadata in tabular files: ``metadata.<field>`` columns, or one JSON ``metadata`` column.

A record's ``metadata`` is an object of named scalar values that slices read
(``by = "metadata"``). JSON formats carry it as a top-level key; CSV and Parquet rows carry it
either as one column per field named ``metadata.<field>`` (``metadata.category``) or as one
``metadata`` column holding a JSON object (a struct column in Parquet). An empty CSV cell or a
null Parquet value means the row has no value for that field.
"""

from __future__ import annotations

from typing import Any

from harness.data.findings import ERROR, Finding
from harness.data.raw import parse_json

PREFIX = "metadata."


def _error(message: str, path: str, number: int, field: str, unit: str = "row") -> Finding:
    return Finding(ERROR, "metadata_type", message, path=path, line=number, field=field, unit=unit)


def fold_metadata(record: dict[str, Any], path: str, number: int, unit: str = "row"
                  ) -> tuple[dict[str, Any], list[Finding]]:
    """The row with its ``metadata.<field>`` columns (or JSON ``metadata`` cell) as one ``metadata`` object
    (``unit``: whether ``number`` is a file line or a row)."""
    columns = [k for k in record if k.startswith(PREFIX)]
    cell = record.get("metadata")
    if not columns and cell is None:
        return record, []
    record = dict(record)
    findings: list[Finding] = []
    if isinstance(cell, str):
        if not cell.strip():
            cell = None
        else:
            try:
                cell = parse_json(cell)
            except (ValueError, RecursionError) as exc:
                findings.append(_error(f"invalid JSON in the metadata cell: {exc}", path, number, "metadata", unit))
                cell = None
    if isinstance(cell, dict):
        cell = {k: v for k, v in cell.items() if v is not None}
    if columns and cell:
        findings.append(_error("both a JSON 'metadata' cell and metadata.<field> columns; use one of the two",
                               path, number, "metadata", unit))
    folded = dict(cell) if isinstance(cell, dict) else {}
    for column in columns:
        value = record.pop(column)
        name = column[len(PREFIX):]
        if not name.strip():
            findings.append(_error(f"column {column!r} names no metadata field", path, number, column, unit))
        elif value is not None and value != "":
            folded[name] = value
    if cell is not None and not isinstance(cell, dict):
        record["metadata"] = cell  # validation reports the wrong type
    elif folded or "metadata" in record:
        record["metadata"] = folded
    return record, findings

"""CSV, TSV, Parquet and hub datasets, read through ``datasets.load_dataset``.

Every library failure becomes a :class:`Finding` (CSV parse errors keep pandas' line
number). TSV is tab-separated with no quoting at all (as GLUE and IANA's text/tab-separated-values
have it: a quote is an ordinary character, a cell holds no tab or newline); CSV is
comma-separated with ``"`` quoting. Cells are read as strings (no number guessing, empty cells stay ``""``); a
``messages`` / ``prompt`` / ``completion`` cell holding a JSON array is parsed. Arrow
fills missing struct keys with null, so null values read from Parquet or the hub (columns
and message keys) are treated as absent; so is an empty ``id`` cell in a CSV file. Row metadata
comes as ``metadata.<field>`` columns or one JSON ``metadata`` column (:mod:`harness.data.metadata`).
"""

from __future__ import annotations

import contextlib
import csv
import io
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.data.findings import ERROR, Finding
from harness.data.metadata import fold_metadata
from harness.data.raw import RawFile, Row, decode_lines, parse_json

JSON_CELL_COLUMNS = ("messages", "prompt", "completion")
_PANDAS_LINE = re.compile(r"line (\d+)")


def _error(code: str, message: str, path: str, line: int | None = None,
           field: str | None = None, unit: str = "line") -> Finding:
    return Finding(ERROR, code, message, path=path, line=line, field=field, unit=unit)


@contextlib.contextmanager
def _quiet_datasets() -> Iterator[str]:
    """Silence ``datasets`` progress bars and give it a throw-away cache directory."""
    import datasets
    from datasets.utils import logging as ds_logging

    bars_were_enabled = datasets.is_progress_bar_enabled()
    verbosity = ds_logging.get_verbosity()
    datasets.disable_progress_bars()
    ds_logging.set_verbosity(ds_logging.CRITICAL)
    cache_dir = tempfile.mkdtemp(prefix="ft-harness-data-")
    try:
        yield cache_dir
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)
        ds_logging.set_verbosity(verbosity)
        if bars_were_enabled:
            datasets.enable_progress_bars()


def _root_cause(exc: BaseException) -> BaseException:
    seen = {id(exc)}
    while (cause := exc.__cause__ or exc.__context__) is not None:
        exc = cause
        if id(exc) in seen:
            break
        seen.add(id(exc))
    return exc


def _first_line(exc: BaseException) -> str:
    """``Type: first line of message`` of the innermost exception (the library's real reason)."""
    exc = _root_cause(exc)
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


#: delimited text readers: (delimiter, csv quoting, name in messages)
DELIMITED: dict[str, tuple[str, Any, str]] = {"csv": (",", csv.QUOTE_MINIMAL, "CSV"),
                                               "tsv": ("\t", csv.QUOTE_NONE, "TSV")}


def read_columnar(path: str, reader: str) -> RawFile:
    """Read a CSV, TSV or Parquet file into rows (1-based data row numbers)."""
    if reader in DELIMITED:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            return RawFile(path, [], [_error("unreadable", f"cannot read file: {exc.strerror}",
                                             path)], reader)
        if not data.strip():
            return RawFile(path, [], [_error("empty_file", "empty file: no records", path)], reader)
        _, problems = decode_lines(data, path)
        if problems:
            return RawFile(path, [], problems, reader)
        return _read_csv(path, data, reader)
    return _read_parquet(path)


def _read_csv(path: str, data: bytes, reader: str = "csv") -> RawFile:
    from datasets import Features, Value, load_dataset

    delimiter, quoting, name = DELIMITED[reader]
    text = data.decode("utf-8-sig")
    try:
        header = next(csv.reader(io.StringIO(text), delimiter=delimiter, quoting=quoting))
    except (csv.Error, StopIteration) as exc:
        return RawFile(path, [], [_error(reader, f"cannot read {name} header: {exc}", path, 1)], reader)
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated or not all(name.strip() for name in header):
        problem = (f"duplicate column names {', '.join(map(repr, duplicated))}" if duplicated
                   else "empty column name")
        return RawFile(path, [], [_error(reader, f"{name} header: {problem}", path, 1)], reader)
    header_problem = _header_problem(header, reader, delimiter)
    if header_problem:
        return RawFile(path, [], [_error(reader, f"{name} header: {header_problem}", path, 1)], reader)
    lines = _record_lines(text, delimiter, quoting)
    if not lines:  # before datasets, which says only that the "train" instruction has no data
        return RawFile(path, [], [_error("empty_file", f"{name} file has a header but no rows", path)], reader)
    features = Features({column: Value("string") for column in header})
    try:
        with _quiet_datasets() as cache_dir:
            dataset = load_dataset("csv", data_files=path, split="train", features=features, sep=delimiter,
                                   quoting=quoting, keep_default_na=False, cache_dir=cache_dir)
            records = dataset.to_list()
    except Exception as exc:  # pandas / pyarrow parse errors: report with the line number
        match = _PANDAS_LINE.search(str(_root_cause(exc)))
        line = int(match.group(1)) if match else None
        return RawFile(path, [], [_error(reader, f"cannot parse {name}: {_first_line(exc)}", path,
                                         line)], reader)
    rows, findings = [], []
    unit = "line" if len(lines) == len(records) else "row"  # file lines where the two parsers agree
    numbers = lines if unit == "line" else range(1, len(records) + 1)
    for number, record in zip(numbers, records, strict=True):
        record, problems = _parse_json_cells(record, path, number, name, unit=unit)
        record, folded = fold_metadata(record, path, number, unit)
        problems += folded
        findings += problems
        if not problems:
            rows.append(Row(number, record, unit))
    if not rows and not findings:
        findings.append(_error("empty_file", f"{name} file has a header but no rows", path))
    return RawFile(path, rows, findings, reader)


#: the columns each record format needs in a delimited file (one of them present picks the format)
FORMAT_COLUMNS = (("messages", ("messages",)), ("instruction", ("instruction", "output")),
                  ("prompt/completion", ("prompt", "completion")), ("text", ("text",)))


def _header_problem(header: list[str], reader: str, delimiter: str) -> str | None:
    """One line about a header no record format fits: a tab-separated file named ``.csv``, or a
    format's column missing (naming it and the columns found), instead of one error per row."""
    found = ", ".join(repr(c) for c in header)
    other = "\t" if delimiter == "," else ","
    if len(header) == 1 and other in header[0] and len(header[0].split(other)) > 1:
        sep, rename = ("tabs", ".tsv") if other == "\t" else ("commas", ".csv")
        return (f"the header {header[0]!r} is one column separated by {sep}: the file looks {sep[:-1]}-separated "
                f"(name it {rename})")
    columns = set(header)
    for fmt, needed in FORMAT_COLUMNS:
        if columns & set(needed):
            missing = [c for c in needed if c not in columns]
            if missing:
                return (f"missing column {', '.join(repr(c) for c in missing)} for the {fmt} format "
                        f"(columns found: {found})")
            return None
    wanted = "; ".join(" + ".join(needed) for _, needed in FORMAT_COLUMNS)
    return f"no record format fits the columns (one of: {wanted}); columns found: {found}"


def _record_lines(text: str, delimiter: str, quoting: Any) -> list[int]:
    """The file line each data record starts on (a quoted cell may span lines); blank lines skipped."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting)
    starts, end = [], 0
    try:
        for i, cells in enumerate(reader):
            start, end = end + 1, reader.line_num
            if i and any(cell.strip() for cell in cells):
                starts.append(start)
    except csv.Error:  # the parse below reports it with its line
        starts.append(end + 1)
    return starts


def _parse_json_cells(record: dict[str, Any], path: str, number: int, kind: str = "CSV", unit: str = "row"
                      ) -> tuple[dict[str, Any], list[Finding]]:
    findings = []
    record = {k: v for k, v in record.items() if not (k == "id" and v == "")}
    for column in JSON_CELL_COLUMNS:
        value = record.get(column)
        if isinstance(value, str) and value.lstrip().startswith(("[", "{")):
            try:
                record[column] = parse_json(value)
            except (ValueError, RecursionError) as exc:
                findings.append(_error("invalid_json", f"invalid JSON in {kind} cell: {exc}", path,
                                       number, column, unit))
    return record, findings


def _strip_null_keys(value: Any) -> Any:
    if isinstance(value, list):
        return [_strip_null_keys(item) for item in value]
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if v is not None}
    return value


def _rows_from_records(records: list[dict[str, Any]], path: str = "") -> tuple[list[Row], list[Finding]]:
    rows, findings = [], []
    for number, record in enumerate(records, start=1):
        record = {k: v for k, v in record.items() if v is not None}
        for column in JSON_CELL_COLUMNS:
            if isinstance(record.get(column), list):
                record[column] = _strip_null_keys(record[column])
        record, problems = fold_metadata(record, path, number)
        findings += problems
        if not problems:
            rows.append(Row(number, record, "row"))
    return rows, findings


def _read_parquet(path: str) -> RawFile:
    from datasets import load_dataset

    try:
        with _quiet_datasets() as cache_dir:
            dataset = load_dataset("parquet", data_files=path, split="train", cache_dir=cache_dir)
            records = dataset.to_list()
    except Exception as exc:  # not Parquet, truncated file, unsupported types
        return RawFile(path, [], [_error("parquet", f"cannot read Parquet file: "
                                         f"{_first_line(exc)}", path)], "parquet")
    rows, findings = _rows_from_records(records, path)
    if not rows and not findings:
        findings = [_error("empty_file", "Parquet file has no rows", path)]
    return RawFile(path, rows, findings, "parquet")


def read_hub(dataset_id: str, split: str | None) -> RawFile:
    """Read one split of a hub dataset (needs network access; offline gives a clear error)."""
    from datasets import load_dataset

    split = split or "train"
    try:
        with _quiet_datasets():
            dataset = load_dataset(dataset_id, split=split)
            records = dataset.to_list()
    except Exception as exc:  # offline, unknown id, missing split
        return RawFile(dataset_id, [], [_error(
            "hub", f"no such file, and hub dataset {dataset_id!r} (split {split!r}) could not "
            f"be loaded: {_first_line(exc)}", dataset_id)], "hub")
    rows, findings = _rows_from_records(records, dataset_id)
    return RawFile(dataset_id, rows, findings, "hub")

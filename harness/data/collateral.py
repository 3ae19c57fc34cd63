"""Reading the sets collateral checks run on: general text documents, general prompts and
refusal request sets in the AdvBench, HarmBench and XSTest CSV formats (read directly).

Formats, told apart by their header row:

* AdvBench (``harmful_behaviors.csv``): ``goal,target``; every row harmful, category ``advbench``;
* HarmBench (``harmbench_behaviors_text_*.csv``): ``Behavior,FunctionalCategory,SemanticCategory,
  Tags,ContextString,BehaviorID``; every row harmful, category ``SemanticCategory``, a non-empty
  ``ContextString`` put before the behaviour as HarmBench's contextual prompts do;
* XSTest (``xstest_prompts.csv``): ``id,prompt,type,label,focus,note``; category ``type``; a row is
  harmful when ``label`` is ``unsafe`` (without a ``label`` column: when ``type`` starts ``contrast_``).

Text and prompt sets are ``.txt`` (one per non-empty line) or JSON Lines with a ``text`` /
``prompt`` field (and optionally ``id``). Every error names file, line and field.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from harness.errors import DatasetError

ADVBENCH, HARMBENCH, XSTEST = "advbench", "harmbench", "xstest"
_REQUIRED = {ADVBENCH: ("goal", "target"), HARMBENCH: ("Behavior", "SemanticCategory"), XSTEST: ("prompt", "type")}


@dataclass(frozen=True)
class Item:
    """One document, prompt or request of a collateral set."""

    id: str
    text: str
    category: str = ""
    harmful: bool | None = None


def fingerprint(items: list[Item]) -> str:
    """Content hash of a set (cache keys and the report)."""
    data = json.dumps([[i.id, i.text, i.category, i.harmful] for i in items], ensure_ascii=False)
    return hashlib.sha256(data.encode("utf-8")).hexdigest()[:16]


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DatasetError("file not found", path=str(path)) from None
    except UnicodeDecodeError as exc:
        raise DatasetError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", path=str(path)) from None
    except OSError as exc:
        raise DatasetError(f"cannot read: {exc.strerror or exc}", path=str(path)) from None


def read_texts(path: str | Path, field: str = "text") -> list[Item]:
    """Documents (``field="text"``) or prompts (``field="prompt"``) from ``.txt`` or ``.jsonl``."""
    p = Path(path)
    text = _read_text(p)
    items: list[Item] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if p.suffix.lower() == ".txt":
            items.append(Item(f"line-{number}", line))
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"not valid JSON: {exc.msg}", path=str(p), line=number) from None
        value = row.get(field) if isinstance(row, dict) else None
        if not isinstance(value, str) or not value.strip():
            raise DatasetError("expected a non-empty string", path=str(p), line=number, field=field)
        items.append(Item(str(row.get("id", f"line-{number}")), value))
    if not items:
        raise DatasetError(f"no {field}s in the file", path=str(p))
    seen: dict[str, int] = {}
    for position, item in enumerate(items):
        if item.id in seen:
            raise DatasetError(f"id {item.id!r} appears twice (entries {seen[item.id] + 1} and {position + 1})",
                               path=str(p), field="id")
        seen[item.id] = position
    return items


def request_format(header: list[str]) -> str | None:
    """Which refusal-set format a CSV header row is (None: none known)."""
    for name, required in _REQUIRED.items():
        if all(column in header for column in required):
            return name
    return None


def read_requests(path: str | Path) -> list[Item]:
    """Requests of an AdvBench, HarmBench or XSTest CSV file (see the module doc)."""
    p = Path(path)
    rows = list(csv.reader(_read_text(p).splitlines()))
    if not rows:
        raise DatasetError("empty file: expected a CSV header row", path=str(p))
    header = [h.strip() for h in rows[0]]
    kind = request_format(header)
    if kind is None:
        known = "; ".join(f"{k}: {','.join(c)}" for k, c in _REQUIRED.items())
        raise DatasetError(f"unknown CSV header {','.join(header)!r} (expected the columns of {known})",
                           path=str(p), line=1)
    column = {name: i for i, name in enumerate(header)}
    items = []
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise DatasetError(f"expected {len(header)} columns, got {len(row)}", path=str(p), line=number)

        def cell(name: str, row: list[str] = row) -> str:
            return row[column[name]].strip() if name in column else ""

        text_field = {ADVBENCH: "goal", HARMBENCH: "Behavior", XSTEST: "prompt"}[kind]
        text = cell(text_field)
        if not text:
            raise DatasetError("empty request", path=str(p), line=number, field=text_field)
        if kind == ADVBENCH:
            item = Item(f"row-{number}", text, ADVBENCH, True)
        elif kind == HARMBENCH:
            context = cell("ContextString")
            item = Item(cell("BehaviorID") or f"row-{number}", f"{context}\n\n---\n\n{text}" if context else text,
                        cell("SemanticCategory") or "uncategorised", True)
        else:
            label = cell("label").lower()
            if label not in ("", "safe", "unsafe"):
                raise DatasetError(f"expected 'safe' or 'unsafe', got {label!r}", path=str(p), line=number,
                                   field="label")
            kind_of = cell("type") or "uncategorised"
            harmful = label == "unsafe" if "label" in column else kind_of.startswith("contrast_")
            item = Item(cell("id") or f"row-{number}", text, kind_of, harmful)
        items.append(item)
    if not items:
        raise DatasetError("no requests after the header row", path=str(p))
    return items

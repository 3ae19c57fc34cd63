"""People's labels, round trip: a blind A/B sheet for two candidates' outputs (sides randomised per
item with a seed, the key kept in a separate file), read back validated, and stored by example id and
the fingerprints of both outputs, so a label for an output that has since changed is never reused.

Sheets are CSV (columns ``item``, ``id``, ``question``, ``left``, ``right``, ``label``; fill ``label``
with ``left``, ``right`` or ``tie``) or Label Studio: the export writes an import JSON (one task per
item) and a labelling config, and a Label Studio JSON export (tasks with ``annotations``) reads back.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness.errors import DatasetError
from harness.jsonio import strict_dumps, write_atomic

CHOICES = ("left", "right", "tie")
SHEET_COLUMNS = ("item", "id", "question", "left", "right", "label")
LABEL_STUDIO_CONFIG = """<View>
  <Text name="question" value="$question"/>
  <Text name="left" value="$left"/>
  <Text name="right" value="$right"/>
  <Choices name="label" toName="question" choice="single" required="true">
    <Choice value="left"/><Choice value="right"/><Choice value="tie"/>
  </Choices>
</View>
"""


def output_fingerprint(text: str) -> str:
    """Content hash of one output (a label is valid only for the outputs it was given on)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Label:
    """One person's preference between candidates ``a`` and ``b`` on one example's outputs."""

    suite: str
    a: str
    b: str
    id: str
    fp_a: str
    fp_b: str
    label: str  # "a", "b" or "tie"

    def score_for(self, candidate: str) -> float:
        """+1 when people preferred ``candidate``, −1 the other one, 0 a tie."""
        if self.label == "tie":
            return 0.0
        return 1.0 if self.label == ("a" if candidate == self.a else "b") else -1.0


@dataclass(frozen=True)
class Pair:
    """The two outputs of one example, as shown on the sheet."""

    id: str
    question: str
    output_a: str
    output_b: str


def make_sheet(suite: str, a: str, b: str, pairs: Sequence[Pair], *, seed: int = 0) -> tuple[list[dict], dict]:
    """Sheet rows (blind: ``left`` / ``right``, no candidate names) and the key (who is where)."""
    rng = random.Random(f"{seed}:{suite}:{a}:{b}")
    rows, items = [], {}
    for number, pair in enumerate(pairs, start=1):
        a_left = rng.random() < 0.5
        left, right = (pair.output_a, pair.output_b) if a_left else (pair.output_b, pair.output_a)
        rows.append({"item": number, "id": pair.id, "question": pair.question, "left": left, "right": right,
                     "label": ""})
        items[pair.id] = {"left": "a" if a_left else "b", "fp_a": output_fingerprint(pair.output_a),
                          "fp_b": output_fingerprint(pair.output_b)}
    key = {"suite": suite, "a": a, "b": b, "seed": seed, "items": items}
    return rows, key


def write_sheet(rows: Sequence[dict], key: dict, out_dir: Path, stem: str) -> list[Path]:
    """``<stem>.csv``, ``<stem>.labelstudio.json`` (+ ``.labelstudio.xml``) and ``<stem>.key.json``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=SHEET_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    paths = [out_dir / f"{stem}.csv", out_dir / f"{stem}.labelstudio.json", out_dir / f"{stem}.labelstudio.xml",
             out_dir / f"{stem}.key.json"]
    write_atomic(paths[0], buffer.getvalue())
    tasks = [{"data": {k: row[k] for k in ("item", "id", "question", "left", "right")}} for row in rows]
    write_atomic(paths[1], strict_dumps(tasks, ensure_ascii=False, indent=1) + "\n")
    write_atomic(paths[2], LABEL_STUDIO_CONFIG)
    write_atomic(paths[3], strict_dumps(key, ensure_ascii=False, indent=1, sort_keys=True) + "\n")
    return paths


def read_key(path: Path) -> dict[str, Any]:
    """The key of a sheet; a DatasetError naming the file when it is not one."""
    try:
        key = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError("key file not found", path=str(path)) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"not a key file (not JSON: {exc})", path=str(path)) from None
    if not isinstance(key, dict) or not {"suite", "a", "b", "items"} <= set(key) or not isinstance(key["items"], dict):
        raise DatasetError("not a key file (expected suite, a, b and items, as `human export` writes)",
                           path=str(path))
    return key


def _sheet_rows(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """(where, row) per filled row: CSV ``file:line`` or Label Studio ``file: task N``."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DatasetError("label sheet not found", path=str(path)) from None
    except UnicodeDecodeError as exc:
        raise DatasetError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", path=str(path)) from None
    if path.suffix.lower() == ".json":
        try:
            tasks = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"not valid JSON ({exc.msg} at line {exc.lineno})", path=str(path)) from None
        if not isinstance(tasks, list):
            raise DatasetError("expected a Label Studio export (a JSON array of tasks)", path=str(path))
        rows = []
        for number, task in enumerate(tasks, start=1):
            data = task.get("data", {}) if isinstance(task, dict) else {}
            choices = [c for a in (task.get("annotations") or [] if isinstance(task, dict) else [])
                       for r in (a.get("result") or []) for c in (r.get("value", {}).get("choices") or [])]
            rows.append((f"{path}: task {number}", {"id": data.get("id"), "label": choices[-1] if choices else ""}))
        return rows
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in ("id", "label") if c not in (reader.fieldnames or [])]
    if missing:
        raise DatasetError(f"the sheet has no {', '.join(repr(c) for c in missing)} column (header: "
                           f"{', '.join(reader.fieldnames or [])})", path=str(path), line=1)
    return [(f"{path}:{reader.line_num}", row) for row in reader]


def read_sheet(path: Path, key: dict[str, Any]) -> tuple[list[Label], int]:
    """The labels of a filled sheet and the number of rows left blank; every problem (unknown id,
    repeated row, a value other than left / right / tie) named by file and line, all at once."""
    path = Path(path)
    labels: list[Any] = []
    problems: list[Any] = []
    seen: dict[str, Any] = {}
    blank = 0
    for where, row in _sheet_rows(path):
        example_id = str(row.get("id") or "").strip()
        value = str(row.get("label") or "").strip().casefold()
        if example_id not in key["items"]:
            problems.append(f"{where}: field 'id': {example_id!r} is not an item of this sheet's key")
            continue
        if example_id in seen:
            problems.append(f"{where}: field 'id': {example_id!r} repeats {seen[example_id]}")
            continue
        seen[example_id] = where.rsplit(": ", 1)[-1] if ": task" in where else f"line {where.rsplit(':', 1)[-1]}"
        if not value:
            blank += 1
            continue
        if value not in CHOICES:
            problems.append(f"{where}: field 'label': {row.get('label')!r} is not one of {', '.join(CHOICES)}")
            continue
        item = key["items"][example_id]
        side = item["left"] if value == "left" else ("b" if item["left"] == "a" else "a") if value == "right" else "tie"
        labels.append(Label(key["suite"], key["a"], key["b"], example_id, item["fp_a"], item["fp_b"], side))
    if problems:
        raise DatasetError(f"{len(problems)} problem(s) in the label sheet:\n  " + "\n  ".join(problems[:50]),
                           path=str(path), problems=problems)
    return labels, blank


def read_store(path: Path) -> list[Label]:
    """Every stored label (none when the store does not exist yet)."""
    path = Path(path)
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return [Label(**entry) for entry in data["labels"]]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise DatasetError(f"not a label store ({type(exc).__name__}: {exc})", path=str(path)) from None


def write_store(path: Path, labels: Iterable[Label]) -> None:
    """Write the store atomically, one label per (suite, pair, id, output fingerprints), newest kept."""
    unique: dict[tuple[str, ...], Label] = {}
    for label in labels:
        unique[(label.suite, label.a, label.b, label.id, label.fp_a, label.fp_b)] = label
    entries = [asdict(label) for label in sorted(unique.values(), key=lambda x: (x.suite, x.a, x.b, x.id))]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_atomic(Path(path), strict_dumps({"labels": entries}, ensure_ascii=False, indent=1) + "\n")


def current_scores(labels: Sequence[Label], suite: str, candidate: str, other: str,
                   outputs: dict[str, str], other_outputs: dict[str, str]) -> tuple[dict[str, float], int]:
    """People's verdict per example id for ``candidate`` against ``other`` (+1 / 0 / −1), only where the
    label was given on exactly the current outputs of both; and the count of stale labels left out."""
    scores: dict[str, float] = {}
    stale = 0
    for label in labels:
        if label.suite != suite or {label.a, label.b} != {candidate, other}:
            continue
        mine, theirs = (label.fp_a, label.fp_b) if label.a == candidate else (label.fp_b, label.fp_a)
        if label.id not in outputs or label.id not in other_outputs:
            continue
        if output_fingerprint(outputs[label.id]) != mine or output_fingerprint(other_outputs[label.id]) != theirs:
            stale += 1
            continue
        scores[label.id] = label.score_for(candidate)
    return scores, stale

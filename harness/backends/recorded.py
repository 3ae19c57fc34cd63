"""The ``recorded`` kind: outputs a system already produced (production logs, answers written by
people), read from a JSONL file of example id → output, so any system can be scored, judged and
gated without running it again.

Each line is ``{"id": "...", "output": "..."}`` (``prediction`` is accepted for ``output``, so a
run's ``reports/outputs/<suite>/<candidate>.jsonl`` can be replayed). Every eval example needs one
output; unknown and repeated ids, non-string outputs and bad JSON are errors naming file and line.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.data.objectlines import read_object_lines
from harness.errors import DatasetError, SpecError
from harness.protocol import Candidate, DecodeParams, Generation, TrainingSummary
from harness.spec.registry import KindFacts, register_kind

OUTPUT_FIELDS = ("output", "prediction")


def _prompt_text(messages: Sequence[Any]) -> str:
    return json.dumps(list(messages), sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def read_recorded(path: Path) -> dict[str, str]:
    """Example id → output from a JSONL file; every problem named by file:line and field."""
    rows, problems = read_object_lines(path, "recorded outputs")
    outputs: dict[str, str] = {}
    lines: dict[str, int] = {}
    for number, row in rows:
        example_id = row.get("id")
        field = next((f for f in OUTPUT_FIELDS if f in row), None)
        if not isinstance(example_id, (str, int)) or isinstance(example_id, bool) or str(example_id) == "":
            problems.append(f"{path}:{number}: field 'id': expected the example id (a string), got {example_id!r}")
            continue
        if field is None or not isinstance(row[field], str):
            got = "missing" if field is None else f"got {type(row[field]).__name__}"
            problems.append(f"{path}:{number}: field 'output': expected the recorded output text, {got}")
            continue
        key = str(example_id)
        if key in lines:
            problems.append(f"{path}:{number}: field 'id': {key!r} repeats line {lines[key]}")
            continue
        outputs[key], lines[key] = row[field], number
    if not outputs and not problems:
        problems.append(f"{path}: no recorded outputs (empty file)")
    if problems:
        raise DatasetError(f"{len(problems)} problem(s) in recorded outputs:\n  " + "\n  ".join(problems[:50]),
                           path=str(path), problems=problems)
    return outputs


class RecordedCandidate(Candidate):
    """Outputs looked up by prompt (each eval example's prompt → its id → its recorded output)."""

    kind = "recorded"
    training: TrainingSummary | None = None

    def __init__(self, name: str, path: Path, by_prompt: dict[str, str], fingerprint: str) -> None:
        self.name = name
        self.path = path
        self.fingerprint = fingerprint
        self._by_prompt = by_prompt

    def generate(self, prompts: Sequence[list[Any]], params: DecodeParams) -> list[Generation]:
        """The recorded output of each prompt's example (no model runs)."""
        missing = [i for i, p in enumerate(prompts) if _prompt_text(p) not in self._by_prompt]
        if missing:
            raise DatasetError(f"candidate {self.name!r}: {len(missing)} prompt(s) have no recorded output",
                               path=str(self.path))
        return [Generation(text=self._by_prompt[_prompt_text(p)]) for p in prompts]


def build_recorded(ctx: Any, suite: Any, spec: Any) -> RecordedCandidate:
    """Build the ``kind = "recorded"`` candidate: the file's outputs, matched to the eval split by id."""
    where = f"{ctx.spec.path}: suites.{suite.name}.candidates.{spec.name}"
    raw = spec.options.get("path")
    if not isinstance(raw, str) or not raw.strip():
        raise SpecError(f"{where}.path: expected the JSONL file of recorded outputs (id, output)")
    path = Path(raw).expanduser()
    if not path.is_absolute():
        path = (Path(ctx.spec.path).parent / path).resolve()
    outputs = read_recorded(path)
    split = suite.load_split("eval")
    ids = [ex.id for ex in split.examples]
    unknown = sorted(set(outputs) - set(ids))
    if unknown:
        raise DatasetError(f"{len(unknown)} recorded id(s) are not in the eval set {split.path}: "
                           f"{', '.join(repr(i) for i in unknown[:5])}", path=str(path), field="id")
    absent = [i for i in ids if i not in outputs]
    if absent:
        raise DatasetError(f"{len(absent)} eval example(s) have no recorded output: "
                           f"{', '.join(repr(i) for i in absent[:5])}", path=str(path), field="id")
    by_prompt: dict[str, str] = {}
    for ex in split.examples:
        key = _prompt_text(ex.prompt)
        if key in by_prompt and by_prompt[key] != outputs[ex.id]:
            raise DatasetError(f"eval examples with one prompt have different recorded outputs (id {ex.id!r}); "
                               "outputs are matched by prompt", path=str(path), field="output")
        by_prompt[key] = outputs[ex.id]
    digest = hashlib.sha256(json.dumps(outputs, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()
    return RecordedCandidate(spec.name, path, by_prompt, f"recorded:{digest[:32]}")


KINDS = (
    KindFacts("recorded", build_recorded, ("path",),
              summary="outputs recorded elsewhere (JSONL of example id → output)", required=("path",)),
)


def register() -> None:
    """Register this family's kinds (called by :mod:`harness.kinds`, the one discovery point)."""
    register_kind(*KINDS)

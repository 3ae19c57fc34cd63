"""A model-free generation project for graded-metric tests: an eval set and recorded candidates."""

from __future__ import annotations

import json
from pathlib import Path

#: (id, product fields, reference description)
ROWS = [(f"p-{i:02d}", f"name: item {i}; colour: {c}; material: {m}",
         f"A {c} item {i} made of {m}.")
        for i, (c, m) in enumerate([(c, m) for c in ("red", "blue", "green", "black", "white", "grey")
                                    for m in ("oak", "steel", "wool", "glass")])]


def write_eval(root: Path) -> Path:
    """The eval split (chat JSONL with a product category per row)."""
    path = root / "eval.jsonl"
    lines = []
    for i, (example_id, fields, reference) in enumerate(ROWS):
        lines.append(json.dumps({"id": example_id, "metadata": {"category": "odd" if i % 2 else "even"},
                                 "messages": [{"role": "user", "content": fields},
                                              {"role": "assistant", "content": reference}]}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_recorded(root: Path, name: str, outputs: dict[str, str]) -> Path:
    """A recorded-outputs file ``<name>.jsonl`` (id → output)."""
    path = root / f"{name}.jsonl"
    path.write_text("".join(json.dumps({"id": i, "output": o}) + "\n" for i, o in outputs.items()), encoding="utf-8")
    return path


def good_outputs() -> dict[str, str]:
    """Outputs close to the references."""
    return {i: ref.replace(" made of", " in") for i, _, ref in ROWS}


def poor_outputs() -> dict[str, str]:
    """Short, vague outputs."""
    return {i: "A thing." if n % 3 else f"An item {n}." for n, (i, _, _) in enumerate(ROWS)}


def write_spec(root: Path, extra: str = "", candidates: tuple[str, ...] = ("good", "poor"),
               metrics: str = '["rougeL"]') -> Path:
    """A generation suite ``s`` over the recorded candidates, plus ``extra`` TOML for the suite."""
    write_eval(root)
    if not (root / "good.jsonl").exists():
        write_recorded(root, "good", good_outputs())
        write_recorded(root, "poor", poor_outputs())
    body = [f'[suites.s]\ntask = "generation"\neval = "eval.jsonl"\nmetrics = {metrics}\n{extra}\n']
    for name in candidates:
        body.append(f'[suites.s.candidates.{name}]\nkind = "recorded"\npath = "{name}.jsonl"\n')
    spec = root / "spec.toml"
    spec.write_text("\n".join(body), encoding="utf-8")
    return spec


def session(root: Path, spec: Path, **options):
    """An evaluation session on ``spec`` with its cache and reports under ``root``."""
    from harness.session import EvalSession, SessionOptions

    return EvalSession(SessionOptions(spec_path=spec, root_dir=root, cache_dir=root / "cache",
                                      reports_dir=root / "reports", **options))

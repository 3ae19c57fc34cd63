"""Scripted judges served by ``ft-harness serve`` on 127.0.0.1: each model id is one judging rule."""

from __future__ import annotations

import re
from pathlib import Path

from harness.serve.scripted import ScriptedBackend

JUDGES = ("rule", "first", "garbage", "rater", "flaky")


def _material(text: str) -> str:
    match = re.search(r"material: (\w+)", text)
    return match.group(1) if match else "\x00"


def answers(prompt: str) -> tuple[str, str] | None:
    """The two answers of a pairwise judge prompt (None for a pointwise one)."""
    match = re.search(r"\[Answer A\]\n(.*?)\n\n\[Answer B\]\n(.*?)\n\nWhich answer", prompt, re.S)
    return (match.group(1), match.group(2)) if match else None


def rule_preference(material: str, first: str, second: str) -> str:
    """The rule judge: the answer that names the product's material wins; both or neither: a tie."""
    a, b = material in first, material in second
    return "A" if a and not b else "B" if b and not a else "tie"


def rule_rating(material: str, answer: str) -> int:
    """The rule judge, pointwise: 5 when the answer names the material, 2 otherwise."""
    return 5 if material in answer else 2


def reply(model: str, messages, params) -> str:
    prompt = messages[-1]["content"]
    material = _material(prompt)
    pair = answers(prompt)
    if model == "first":
        return "A"
    if model == "garbage":
        return "Both answers have their merits, honestly."
    if model in ("rule", "flaky"):
        return rule_preference(material, *pair) if pair else str(rule_rating(material, prompt.split("[Answer]\n")[-1]))
    if model == "rater":  # pass / fail, ignoring the answer's position
        return "PASS" if material in prompt.split("[Answer]\n")[-1] else "FAIL"
    return "?"


def judge_backend(root: Path) -> ScriptedBackend:
    """A scripted backend serving every judge id."""
    backend = ScriptedBackend("rule", reply, base_dir=root)
    for name in JUDGES[1:]:
        backend.add_adapter(name, root)
    return backend

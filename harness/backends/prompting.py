"""Prompt construction for prompted candidates (pure): shot selection and chat messages.

A prompted candidate sends every eval prompt as one conversation: a system message (the eval
prompt's own system prompt followed by the candidate's ``instruction``), then *k* in-context
examples from the **train** split as prior user / assistant turns, then the eval prompt's own
turns. The chat template of the model renders that conversation; nothing here formats text.

Shots are drawn with a seeded ``random.Random``: for classification stratified by label (the
labels share *k* as evenly as possible, the remainder going to labels in a seeded order), else
a plain sample. Train examples whose prompt text equals an eval prompt's are never shots.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.data.records import Example, Message
from harness.metrics.labels import normalize_label

#: The options of a ``prompted`` candidate besides those of its ``base_kind``.
PROMPT_OPTIONS = ("base_kind", "instruction", "shots", "stratify", "seed", "scoring")
#: The kinds a prompted candidate can wrap.
BASE_KINDS = ("base", "adapter", "model", "endpoint")


class ShotError(ValueError):
    """Shots cannot be drawn as asked; ``key`` is the spec key to blame."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(problem)
        self.key, self.problem = key, problem


@dataclass(frozen=True)
class Shot:
    """One in-context example: its train id, its turns (no system message) and its label."""

    id: str
    turns: tuple[Message, ...]
    label: str | None = None


@dataclass(frozen=True)
class PromptPlan:
    """What a prompted candidate adds to every eval prompt: instruction and shots."""

    instruction: str | None = None
    shots: tuple[Shot, ...] = ()
    excluded_overlap: int = 0  # train examples left out because an eval prompt has their text
    notes: tuple[str, ...] = field(default=())

    @property
    def shot_ids(self) -> list[str]:
        return [s.id for s in self.shots]

    def build(self, prompt: Sequence[Message]) -> list[Message]:
        """The conversation sent for one eval ``prompt``."""
        return build_messages(prompt, self.instruction, self.shots)

    def identity(self) -> dict[str, Any]:
        """Plain data that identifies the prompt construction (fingerprints, signatures)."""
        return {"instruction": self.instruction,
                "shots": [{"id": s.id, "turns": [dict(t) for t in s.turns]} for s in self.shots]}

    def signature(self) -> str:
        """``prompt:<hash>`` of the instruction and the shots (ids and content)."""
        text = json.dumps(self.identity(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return "prompt:" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def _system_text(prompt: Sequence[Message]) -> str | None:
    systems = [str(m.get("content", "")) for m in prompt if m.get("role") == "system"]
    return "\n\n".join(s for s in systems if s.strip()) or None


def build_messages(prompt: Sequence[Message], instruction: str | None, shots: Sequence[Shot]) -> list[Message]:
    """System (the prompt's own + ``instruction``), the shots' turns, then the prompt's other turns."""
    system = "\n\n".join(s for s in (_system_text(prompt), instruction) if s and s.strip())
    messages: list[Message] = [{"role": "system", "content": system}] if system else []
    for shot in shots:
        messages.extend(dict(turn) for turn in shot.turns)
    messages.extend(dict(m) for m in prompt if m.get("role") != "system")
    return messages


def _user_text(messages: Sequence[Message]) -> str:
    return "\n".join(str(m.get("content", "")) for m in messages if m.get("role") == "user").strip()


def shot_pool(train: Sequence[Example], eval_prompts: Sequence[Sequence[Message]], *,
              labels: Sequence[str] = (), aliases: Mapping[str, str] | None = None) -> tuple[list[Shot], int]:
    """Train examples usable as shots, and how many were left out for sharing an eval prompt's text.

    With ``labels`` each shot carries its normalised label (None when its reply names none).
    """

    seen = {_user_text(p) for p in eval_prompts}
    pool, overlap = [], 0
    for ex in train:
        if _user_text(ex.prompt) in seen:
            overlap += 1
            continue
        turns = tuple(dict(m) for m in ex.messages if m.get("role") != "system")
        if not any(t.get("role") == "assistant" for t in turns):
            continue
        label = (normalize_label(ex.reference, labels, aliases) or None) if labels else None
        pool.append(Shot(ex.id, turns, label))
    return pool, overlap


def quotas(k: int, labels: Sequence[str], rng: random.Random) -> dict[str, int]:
    """Shots per label: ``k // len(labels)`` each, one more for the first ``k % len(labels)``
    labels in a seeded order."""
    base, extra = divmod(k, len(labels))
    order = list(labels)
    rng.shuffle(order)
    return {label: base + (1 if label in order[:extra] else 0) for label in labels}


def select_shots(pool: Sequence[Shot], k: int, *, seed: int, labels: Sequence[str] = (),
                 stratify: bool = True) -> list[Shot]:
    """``k`` shots from ``pool``, seeded; stratified by label when ``labels`` are given.

    Raises :class:`ShotError` (key ``shots``) when ``k`` exceeds the pool, or when a label has
    fewer examples than its share.
    """
    if k < 0:
        raise ShotError("shots", f"expected 0 or more shots, got {k}")
    if k > len(pool):
        raise ShotError("shots", f"shots = {k} but the train split has only {len(pool)} usable example(s)")
    if k == 0:
        return []
    rng = random.Random(seed)
    if not (labels and stratify):
        return rng.sample(list(pool), k)
    by_label: dict[str, list[Shot]] = {label: [] for label in labels}
    for shot in pool:
        if shot.label in by_label:
            by_label[shot.label].append(shot)
    empty = [label for label in labels if not by_label[label]]
    if empty:
        raise ShotError("shots", f"label {empty[0]!r} has no train example to show (stratified shots draw "
                                 "from every label; add examples of it or set stratify = false)")
    need = quotas(k, labels, rng)
    chosen = []
    for label in labels:
        have = by_label[label]
        if need[label] > len(have):
            raise ShotError("shots", f"label {label!r} has only {len(have)} train example(s); "
                                     f"stratified shots = {k} need "
                                     f"{need[label]} of it (use fewer shots or stratify = false)")
        chosen.extend(rng.sample(have, need[label]))
    rng.shuffle(chosen)
    return chosen


def plan_prompt(train: Sequence[Example], eval_prompts: Sequence[Sequence[Message]], *, k: int, seed: int,
                instruction: str | None = None, labels: Sequence[str] = (),
                aliases: Mapping[str, str] | None = None, stratify: bool = True) -> PromptPlan:
    """The prompt construction of one prompted candidate (raises :class:`ShotError`)."""
    pool, overlap = shot_pool(train, eval_prompts, labels=labels, aliases=aliases) if k else ([], 0)
    shots = select_shots(pool, k, seed=seed, labels=labels, stratify=stratify)
    return PromptPlan(instruction=instruction, shots=tuple(shots), excluded_overlap=overlap)

"""Judges (``[suites.<name>.judges.<judge>]``): a model on any OpenAI-compatible endpoint grading
the suite's outputs, reported and gated as the per-example metric ``judge:<judge>``.

    [suites.support.judges.helpful]
    mode = "pairwise"                 # or "pointwise"
    model = "gpt-4o-mini"             # the judge's model id at base_url
    base_url = "http://127.0.0.1:8000/v1"   # default: $OPENAI_BASE_URL, else OpenAI
    api_key_env = "OPENAI_API_KEY"    # the environment variable holding the key (never the key itself)
    rubric = "Which answer is more accurate and helpful?"
    against = "base"                  # pairwise: another candidate, or "reference"
    samples = 1                       # judgments per item (> 1 needs temperature > 0), averaged per item
    max_unparseable = 0.1             # share of unreadable judgments above which the metric is an error
    min_agreement = 0.4               # optional: Cohen's kappa with people's labels below which it is untrusted

Pointwise judges take ``scale = [1, 5]`` (whole numbers) or ``scale = "pass_fail"``, ``reference =
true`` to show the reference answer, and ``logprobs = true`` for G-Eval's probability-weighted
rating where the endpoint returns log-probabilities.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from harness.errors import SpecError
from harness.metrics.judging import JUDGE_SYSTEM, PASS_FAIL, Scale
from harness.spec.table import Table, show

MODES = ("pointwise", "pairwise")
REFERENCE = "reference"
_KEYS = ("mode", "model", "base_url", "api_key_env", "timeout_s", "concurrency", "max_attempts", "rubric",
         "against", "scale", "reference", "samples", "temperature", "max_tokens", "logprobs",
         "max_unparseable", "min_agreement", "seed")


@dataclass(frozen=True)
class JudgeSpec:
    """One judge: the endpoint and model, what it is asked, how often, and its thresholds."""

    name: str
    mode: str
    model: str
    rubric: str
    client: dict[str, Any] = field(default_factory=dict)   # base_url, api_key_env, limits (options of the endpoint kind)
    against: str | None = None
    scale: Scale = field(default_factory=Scale)
    reference: bool = False
    samples: int = 1
    temperature: float = 0.0
    max_tokens: int = 8
    logprobs: bool = False
    max_unparseable: float = 0.1
    min_agreement: float | None = None
    seed: int = 0

    @property
    def metric(self) -> str:
        """The metric name the suite reports it under."""
        return f"judge:{self.name}"

    @property
    def prompt_hash(self) -> str:
        """A hash of what the judge is asked (system prompt, rubric, mode, scale, reference shown)."""
        text = "\x1f".join([JUDGE_SYSTEM, self.rubric, self.mode, self.scale.describe(), str(self.reference)])
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]

    def signature(self, endpoint: str) -> str:
        """The score signature: judge identity, prompt, mode, samples and decoding."""
        parts = [f"judge|model:{self.model}@{endpoint}", f"mode:{self.mode}", f"prompt:{self.prompt_hash}",
                 f"samples:{self.samples}", f"temp:{self.temperature:g}", f"max_tokens:{self.max_tokens}"]
        if self.mode == "pairwise":
            parts.append(f"against:{self.against}")
        else:
            parts.append(f"scale:{self.scale.describe()}|reference:{'yes' if self.reference else 'no'}"
                         f"|weighting:{'geval' if self.logprobs else 'sampled'}")
        return "|".join(parts)


def _scale(t: Table) -> Scale:
    value = t.get("scale", [1, 5])
    if value == PASS_FAIL:
        return Scale(pass_fail=True)
    if (not isinstance(value, list) or len(value) != 2 or not all(isinstance(v, int) and not isinstance(v, bool)
                                                                  for v in value) or value[0] >= value[1]):
        raise SpecError(f"{t.at('scale')}: expected [low, high] whole numbers with low < high, or "
                        f"\"{PASS_FAIL}\", got {show(value)}")
    if value[1] - value[0] > 9:
        raise SpecError(f"{t.at('scale')}: at most 10 points (one token per rating), got {show(value)}")
    return Scale(int(value[0]), int(value[1]))


def check_judge(name: str, t: Table, candidates: tuple[str, ...]) -> JudgeSpec:
    """One judge table, checked completely."""
    mode = str(t.string("mode", required=True, choices=MODES))
    model = str(t.string("model", required=True))
    rubric = str(t.string("rubric", required=True))
    client = {key: t.get(key) for key in ("base_url", "api_key_env") if key in t}
    for key in ("base_url", "api_key_env"):
        if key in t:
            t.string(key)
    if "timeout_s" in t:
        client["timeout_s"] = t.number("timeout_s", 60.0, minimum=0.001)
    for key in ("concurrency", "max_attempts"):
        if key in t:
            client[key] = t.integer(key, 1, minimum=1)
    samples = t.integer("samples", 1, minimum=1, maximum=20)
    temperature = t.number("temperature", 0.0 if samples == 1 else 0.7, minimum=0.0, maximum=2.0)
    if samples > 1 and temperature == 0:
        raise SpecError(f"{t.at('temperature')}: samples = {samples} needs temperature > 0 (greedy judgments "
                        "would repeat each other)")
    against = None
    if mode == "pairwise":
        against = str(t.string("against", required=True))
        if against != REFERENCE and against not in candidates:
            raise SpecError(f"{t.at('against')}: {against!r} is neither a candidate of this suite "
                            f"({', '.join(candidates) or 'none'}) nor \"{REFERENCE}\"")
        for key in ("scale", "reference", "logprobs"):
            if key in t:
                raise SpecError(f"{t.at(key)}: only a pointwise judge takes {key!r}")
    elif "against" in t:
        raise SpecError(f"{t.at('against')}: only a pairwise judge takes 'against'")
    min_agreement = t.number("min_agreement", 0.0, minimum=-1.0, maximum=1.0) if "min_agreement" in t else None
    return JudgeSpec(
        name=name, mode=mode, model=model, rubric=rubric, client=client, against=against,
        scale=_scale(t) if mode == "pointwise" else Scale(), reference=t.boolean("reference", False),
        samples=samples, temperature=temperature, max_tokens=t.integer("max_tokens", 8, minimum=1, maximum=4096),
        logprobs=t.boolean("logprobs", False),
        max_unparseable=t.number("max_unparseable", 0.1, minimum=0.0, maximum=1.0),
        min_agreement=min_agreement, seed=t.seed("seed") if "seed" in t else 0)


def check_judges(t: Table | None, candidates: tuple[str, ...]) -> tuple[JudgeSpec, ...]:
    """``[suites.<name>.judges]``: one table per judge."""
    if t is None:
        return ()
    judges = []
    for name in t:
        if not name.replace("_", "").replace("-", "").isalnum():
            raise SpecError(f"{t.at(name)}: a judge name is letters, digits, _ and - (got {name!r})")
        table = t.table(name, known=_KEYS)
        if table is None:
            raise SpecError(f"{t.at(name)}: expected a table")
        judges.append(check_judge(name, table, candidates))
    return tuple(judges)


@dataclass(frozen=True)
class HumanSpec:
    """People's labels of a suite (``[suites.<name>.human]``): the label store written by
    ``ft-harness human import`` and the candidate every other one is compared with."""

    labels: Any  # Path of the label store
    against: str

    @property
    def metric(self) -> str:
        return f"human:{self.against}"


def check_human(t: Table | None, base: Any, candidates: tuple[str, ...]) -> HumanSpec | None:
    """``[suites.<name>.human]``: ``labels = "labels/suite.json"``, ``against = "<candidate>"``."""
    if t is None:
        return None
    labels = str(t.string("labels", required=True))
    against = str(t.string("against", required=True))
    if against not in candidates:
        raise SpecError(f"{t.at('against')}: {against!r} is not a candidate of this suite "
                        f"({', '.join(candidates) or 'none'})")
    return HumanSpec((base / labels).resolve(), against)

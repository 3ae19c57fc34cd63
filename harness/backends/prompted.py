"""The ``prompted`` candidate: any base (the local base, an adapter, a model directory, an
OpenAI-compatible endpoint) with an instruction and *k* in-context examples from the train split.

Zero-shot and few-shot are the same kind with ``shots = 0 | k``. The inner candidate is built
from ``base_kind`` with the remaining options; every prompt is rebuilt by
:class:`harness.backends.prompting.PromptPlan` and rendered by the model's own chat template.
For a local model the longest rebuilt eval prompt must fit the context window minus
``max_new_tokens``: otherwise building the candidate fails with the token counts, never
truncating silently (an endpoint has no known window; its server refuses an over-long prompt).

Spec::

    [suites.sentiment.candidates.fewshot]
    kind = "prompted"
    base_kind = "base"             # or "adapter" (path = ...), "model" (path = ...), "endpoint" (model = ...)
    instruction = "Answer with one word: positive or negative."
    shots = 8                      # 0: zero-shot
    stratify = true                # classification: shots spread evenly over the labels
    seed = 0                       # which shots (default: harness.seed)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.backends.prompting import BASE_KINDS, PromptPlan, ShotError, plan_prompt
from harness.context import BuildContext
from harness.data.records import Message
from harness.errors import DatasetError, HarnessError, SpecError
from harness.protocol import (
    Candidate,
    DecodeParams,
    Generation,
    LabelProbabilities,
    LabelScorer,
    TrainingSummary,
)
from harness.spec import CandidateSpec, SuiteSpec
from harness.spec.registry import KindFacts, build, kind_facts, register_kind


@dataclass
class PromptedCandidate(Candidate):
    """An inner candidate whose every prompt carries the instruction and the shots."""

    name: str
    inner: Candidate
    plan: PromptPlan
    fingerprint: str
    kind: str = "prompted"
    training: TrainingSummary | None = None

    def priced_model(self) -> str | None:
        """The inner candidate's remote model id (priced by the report), if it has one."""
        return self.inner.priced_model()

    @property
    def prompt_signature(self) -> str:
        """``prompt:<hash>`` of the instruction and shots: part of every score signature."""
        return self.plan.signature()

    def prompt_details(self) -> dict[str, Any] | None:
        """What the report and ``results.json`` record: instruction and shot ids (train split)."""
        return {"instruction": self.plan.instruction, "shots": len(self.plan.shots),
                "shot_ids": self.plan.shot_ids, "shot_labels": [s.label for s in self.plan.shots],
                "excluded_overlap": self.plan.excluded_overlap, "signature": self.plan.signature(),
                "base_kind": self.inner.kind}

    def messages(self, prompts: Sequence[list[Message]]) -> list[list[Message]]:
        """The conversations actually sent."""
        return [self.plan.build(p) for p in prompts]

    def generate(self, prompts: Sequence[list[Message]], params: DecodeParams) -> list[Generation]:
        """The inner candidate's replies to the prompted conversations."""
        return self.inner.generate(self.messages(prompts), params)


@dataclass
class PromptedLabelScorer(PromptedCandidate):
    """A prompted candidate whose inner model scores labels by log-likelihood."""

    def predict_labels(self, prompts: Sequence[list[Message]], labels: Sequence[str]) -> list[str]:
        """The most likely label after each prompted conversation."""
        return self.inner.predict_labels(self.messages(prompts), labels)  # type: ignore[attr-defined]

    def token_counts(self, prompts: Sequence[list[Message]], replies: Sequence[str]) -> list[tuple[int, int]] | None:
        """``(prompt, completion)`` tokens per prompted request (None when the inner cannot count)."""
        return self.inner.token_counts(self.messages(prompts), replies)


@dataclass
class PromptedLabelProbabilities(PromptedLabelScorer):
    """A prompted candidate whose inner model also gives label probabilities (calibration)."""

    def label_probabilities(self, prompts: Sequence[list[Message]], labels: Sequence[str]) -> list[list[float]]:
        """Label probabilities after each prompted conversation (the inner model's)."""
        return self.inner.label_probabilities(self.messages(prompts), labels)  # type: ignore[attr-defined]


def _where(ctx: BuildContext, suite: SuiteSpec, spec: CandidateSpec) -> str:
    return f"{ctx.spec.path}: suites.{suite.name}.candidates.{spec.name}"


def prompt_plan(suite: SuiteSpec, options: dict[str, Any], *, seed: int, eval_prompts=None) -> PromptPlan:
    """The prompt construction a prompted candidate's ``options`` ask for (raises ShotError)."""
    k = int(options.get("shots", 0))
    train = suite.load_split("train").examples if k else []
    if k and eval_prompts is None:
        eval_prompts = [ex.prompt for ex in suite.load_split("eval").examples]
    classification = suite.task == "classification"
    return plan_prompt(train, eval_prompts or [], k=k, seed=seed, instruction=options.get("instruction"),
                       labels=suite.labels if classification else (), aliases=suite.label_aliases,
                       stratify=bool(options.get("stratify", True)))


def check_context(candidate: PromptedCandidate, suite: SuiteSpec, prompts: Sequence[list[Message]],
                  where: str) -> dict[str, Any] | None:
    """Refuse a prompted conversation longer than the local model's context minus ``max_new_tokens``.

    Returns the numbers checked (None when the inner model has no known window)."""
    if not prompts:
        return None
    limit, source = candidate.inner.context_window()
    if limit is None:
        return None
    counts = candidate.inner.prompt_lengths(candidate.messages(prompts))
    if counts is None:
        return None
    longest = max(range(len(counts)), key=lambda i: counts[i])
    room = limit - suite.decode.max_new_tokens
    if counts[longest] > room:
        key = "shots" if candidate.plan.shots else "instruction"
        raise SpecError(
            f"{where}.{key}: suite {suite.name!r}, candidate {candidate.name!r}: the prompted conversation of "
            f"eval example {longest + 1} is {counts[longest]:,} tokens (instruction + {len(candidate.plan.shots)} "
            f"shot(s) + the example); the model's context is {limit:,} tokens ({source}) minus max_new_tokens "
            f"{suite.decode.max_new_tokens} = {room:,}. Use fewer shots or a shorter instruction; prompts are "
            "never truncated")
    return {"longest_prompt_tokens": counts[longest], "context_tokens": limit, "context_from": source}


def build_prompted(ctx: BuildContext, suite: SuiteSpec, spec: CandidateSpec) -> PromptedCandidate:
    """A prompted candidate over ``base_kind`` (the spec checked the keys when it loaded)."""
    where = _where(ctx, suite, spec)
    options = dict(spec.options)
    seed = int(options.get("seed", ctx.spec.seed))
    eval_prompts = [ex.prompt for ex in suite.load_split("eval").examples]
    try:
        plan = prompt_plan(suite, options, seed=seed, eval_prompts=eval_prompts)
    except ShotError as exc:
        raise SpecError(f"{where}.{exc.key}: {exc.problem}") from None
    base_kind = str(options["base_kind"])
    inner_options = {k: v for k, v in options.items() if k in kind_facts(base_kind).options}
    inner = build(ctx, suite, CandidateSpec(name=spec.name, kind=base_kind, options=inner_options))
    identity = {"inner": inner.fingerprint, **plan.identity()}
    fingerprint = hashlib.sha256(json.dumps(identity, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]
    cls: type[PromptedCandidate] = PromptedCandidate
    if isinstance(inner, LabelProbabilities):
        cls = PromptedLabelProbabilities
    elif isinstance(inner, LabelScorer):
        cls = PromptedLabelScorer
    candidate = cls(spec.name, inner, plan, fingerprint)
    check_context(candidate, suite, eval_prompts, where)
    ctx.log(f"{suite.name}/{spec.name}: prompted {base_kind}, {len(plan.shots)} shot(s) from train "
            f"({', '.join(plan.shot_ids) or 'none'})")
    return candidate


def check_prompted(suite: Any, spec: CandidateSpec, where: str) -> None:
    """A prompted candidate's shots can be drawn: the suite has a train split with enough examples
    (and, stratified, every label among them). The context window is checked when it is built."""

    shots = int(spec.options.get("shots", 0))
    if not shots:
        return
    if suite.train is None:
        raise SpecError(f"{where}.shots: shots are drawn from the train split; suite {suite.name!r} has none "
                        "(add `train = ...` or set shots = 0)")
    try:
        prompt_plan(suite, dict(spec.options), seed=int(spec.options.get("seed", 0)))
    except ShotError as exc:
        raise SpecError(f"{where}.{exc.key}: {exc.problem}") from None
    except HarnessError as exc:  # an unreadable split is the suite's mistake, named under its own key
        path = str(exc.path) if isinstance(exc, DatasetError) else ""
        which = "train" if suite.train is not None and path == str(suite.train) else "eval"
        raise SpecError(f"{where.rsplit('.candidates.', 1)[0]}.{which}: {exc}") from None


KINDS = (
    KindFacts("prompted", build_prompted, ("base_kind", "instruction", "shots", "stratify", "seed", "scoring"),
              summary="a base, adapter, model or endpoint prompted with an instruction and k in-context "
                      "examples from the train split",
              required=("base_kind",), wraps=BASE_KINDS, suite_check=check_prompted),
)

def register() -> None:
    """Register this family's kinds (called by :mod:`harness.kinds`, the one discovery point)."""
    register_kind(*KINDS)

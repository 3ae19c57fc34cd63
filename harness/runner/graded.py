"""Graded metrics: scores that need a model or user code beside the outputs (embedding similarity,
custom scorers). Each yields per-example scores, an aggregate and a signature like any metric, so
the gate, slices and paired tests treat them as they treat ROUGE."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.backends.encoder.embedding import (
    embed,
    embedding_model_dir,
    max_seq_length,
    model_identity,
)
from harness.data.records import Example
from harness.errors import HarnessError
from harness.metrics._common import library_version, mean
from harness.metrics.registry import info, option_value
from harness.metrics.similarity import cosine_scores, semscore_signature
from harness.spec import SuiteSpec
from harness.spec.scorers import ScorerSpec

Scored = tuple[dict[str, float], dict[str, list[float]], dict[str, str], dict[str, Any]]


def score_semscore(predictions: Sequence[str], references: Sequence[str], *, model: str = "minilm",
                   spec_dir: Path | None = None) -> Scored:
    """SemScore: per example, the cosine of the output's and the reference's sentence embeddings."""

    model_dir = embedding_model_dir(model, spec_dir)
    outputs, refs = embed(model_dir, predictions), embed(model_dir, references)
    scores = cosine_scores(outputs.numpy(), refs.numpy())
    signature = semscore_signature(model_identity(model, model_dir), max_length=max_seq_length(model_dir),
                                   transformers_version=library_version("transformers"))
    return ({"semscore": mean(scores)}, {info("semscore").score or "semscore": scores},
            {"semscore": signature}, {})


def example_view(example: Example) -> dict[str, Any]:
    """What a custom scorer receives as the example: plain data, never the harness's own objects."""
    prompt = example.prompt
    users = [str(m.get("content", "")) for m in prompt if m.get("role") == "user"]
    return {"id": example.id, "messages": [dict(m) for m in example.messages], "prompt": [dict(m) for m in prompt],
            "input": users[-1] if users else "", "reference": example.reference,
            "metadata": dict(example.meta.get("metadata") or {}) if isinstance(example.meta, dict) else {}}


def _number(scorer: ScorerSpec, example_id: str, value: Any) -> float:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and math.isfinite(float(value)):
        return float(value)
    raise HarnessError(f"scorer {scorer.name!r} ({scorer.target}) returned {value!r} "
                       f"({type(value).__name__}) for example {example_id!r}: expected a finite number or a bool")


def score_custom(scorer: ScorerSpec, examples: Sequence[Example], predictions: Sequence[str]) -> Scored:
    """A custom scorer over every (example, output): per-example numbers, their mean, its signature."""
    scores = []
    for example, output in zip(examples, predictions, strict=True):
        try:
            value = scorer.function(example_view(example), output)
        except Exception as exc:
            raise HarnessError(f"scorer {scorer.name!r} ({scorer.target}) failed on example {example.id!r}: "
                               f"{type(exc).__name__}: {exc}") from exc
        scores.append(_number(scorer, example.id, value))
    name = scorer.metric
    return {name: mean(scores)}, {name: scores}, {name: scorer.signature}, {}


def score_graded(suite: SuiteSpec, predictions: Sequence[str], references: Sequence[str], *,
                 examples: Sequence[Example] = (), spec_dir: Path | None = None) -> Scored:
    """Every graded metric the suite reports (nothing when it reports none)."""
    parts: list[Scored] = []
    if "semscore" in suite.reported_metrics:
        model = str(option_value(suite.metric_options, "embedding_model"))
        parts.append(score_semscore(predictions, references, model=model, spec_dir=spec_dir))
    parts.extend(score_custom(scorer, examples, predictions) for scorer in suite.scorers)
    return merge_scored(parts)


def merge_scored(parts: Sequence[Scored]) -> Scored:
    """Several metrics' (metrics, per-example scores, signatures, details) as one."""
    merged: Scored = ({}, {}, {}, {})
    for metrics, per_example, signatures, details in parts:
        merged[0].update(metrics)
        merged[1].update(per_example)
        merged[2].update(signatures)
        merged[3].update(details)
    return merged

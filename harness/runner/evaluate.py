"""Run one candidate over one eval split and score it: predictions → per-example and aggregate
metrics. Model outputs are cached per (model fingerprint, prompts, decoding, method)."""

from __future__ import annotations

import statistics
import time
from typing import Any

from harness.candidates.context import BuildContext
from harness.candidates.protocol import Candidate, Generation, LabelScorer
from harness.candidates.spec import SuiteSpec
from harness.data.records import Split
from harness.results import EvalResult

# Prompts handed to a candidate at once: large enough for full, length-sorted batches, small
# enough for a progress bar that moves.
PROGRESS_CHUNK = 256


def _progress(ctx: BuildContext, total: int, label: str):
    """A tqdm bar on stderr when the session asked for progress (``pytest -s``, not ``-q``)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"[ft-harness] {label}", unit="ex", leave=False, mininterval=1.0,
                disable=not ctx.options.get("progress", False) or total < PROGRESS_CHUNK)


def _prompt_text(messages: list[dict[str, Any]]) -> str:
    users = [str(m.get("content", "")) for m in messages if m.get("role") == "user"]
    return users[-1] if users else ""


def _outputs_key(candidate: Candidate, suite: SuiteSpec, split: Split, method: str) -> str:
    from harness.cache import cache_key

    return cache_key("outputs", {
        "model": candidate.fingerprint,
        "prompts": split.fingerprint,
        "decode": suite.decode.as_dict(),
        "method": method,
        "labels": list(suite.labels) if method != "generate" else [],
    })


def run_candidate(ctx: BuildContext, candidate: Candidate, suite: SuiteSpec, split: Split) -> tuple[list[Generation], str, str]:
    """Model outputs for every example (from the cache when possible), the method, and hit/miss."""
    head = bool(getattr(candidate, "always_predicts_labels", False))  # answers with a label directly
    use_likelihood = (suite.task == "classification" and isinstance(candidate, LabelScorer)
                      and (suite.scoring == "likelihood" or head))
    method = ("classifier" if head else "likelihood") if use_likelihood else "generate"
    key = _outputs_key(candidate, suite, split, method)
    cached = ctx.cache.get_json(key)
    if cached is not None and len(cached) == len(split):
        return [Generation(**g) for g in cached], method, "hit"
    prompts = [ex.prompt for ex in split.examples]
    ctx.count("generated")
    outputs: list[Generation] = []
    with _progress(ctx, len(prompts), f"{suite.name}/{candidate.name}") as bar:
        for start in range(0, len(prompts), PROGRESS_CHUNK):
            chunk = prompts[start:start + PROGRESS_CHUNK]
            if use_likelihood:
                began = time.perf_counter()
                labels = candidate.predict_labels(chunk, list(suite.labels))
                per = (time.perf_counter() - began) / max(1, len(chunk))
                outputs += [Generation(text=label, latency_s=per) for label in labels]
            else:
                outputs += candidate.generate(chunk, suite.decode)
            bar.update(len(chunk))
    ctx.cache.put_json(key, [g.__dict__ for g in outputs])
    return outputs, method, "miss"


def _usage(outputs: list[Generation]) -> dict[str, float]:
    latencies = sorted(g.latency_s for g in outputs) or [0.0]
    return {
        "requests": float(len(outputs)),
        "prompt_tokens": float(sum(g.prompt_tokens for g in outputs)),
        "completion_tokens": float(sum(g.completion_tokens for g in outputs)),
        "latency_mean_s": float(statistics.fmean(latencies)),
        "latency_p50_s": float(latencies[len(latencies) // 2]),
        "latency_p95_s": float(latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]),
    }


def evaluate_candidate(ctx: BuildContext, candidate: Candidate, suite: SuiteSpec, split: Split) -> EvalResult:
    """Score ``candidate`` on ``split`` with the suite's task metrics."""
    from harness.runner.scoring import score_classification, score_generation

    began = time.perf_counter()
    outputs, method, hit = run_candidate(ctx, candidate, suite, split)
    predictions = [g.text for g in outputs]
    references = [ex.reference for ex in split.examples]
    if suite.task == "classification":
        metrics, per_example, signatures, details = score_classification(
            predictions, references, suite.labels, suite.label_aliases)
    else:
        metrics, per_example, signatures, details = score_generation(predictions, references, suite.metrics,
                                                                     suite.metric_options)
    details["method"] = method
    remote_model = getattr(candidate, "model", None)
    if isinstance(remote_model, str):
        details["model"] = remote_model  # priced by the report's cost table
    return EvalResult(
        suite=suite.name,
        candidate=candidate.name,
        kind=candidate.kind,
        fingerprint=candidate.fingerprint,
        task=suite.task,
        split=split.name,
        split_fingerprint=split.fingerprint,
        example_ids=[ex.id for ex in split.examples],
        inputs=[_prompt_text(ex.prompt) for ex in split.examples],
        references=references,
        predictions=predictions,
        metrics=metrics,
        per_example=per_example,
        signatures=signatures,
        details=details,
        usage=_usage(outputs),
        training=candidate.training.as_dict() if candidate.training else None,
        cache={"outputs": hit},
        timings={"evaluate_s": time.perf_counter() - began},
    )

"""Run one candidate over one eval split and score it: predictions → per-example and aggregate
metrics. Model outputs are cached per (model fingerprint, decoding, method, prompt)."""

from __future__ import annotations

import hashlib
import json
import statistics
import time
from typing import Any

from harness.cache import cache_key
from harness.context import BuildContext
from harness.data.records import Split
from harness.metrics.degenerate import shortest_label_note
from harness.metrics.degenerate_text import generation_checks
from harness.protocol import Candidate, Generation, LabelScorer
from harness.results import EvalResult
from harness.runner.checks import classification_checks, example_fingerprints, full_signatures
from harness.runner.graded import score_graded
from harness.runner.scoring import score_task
from harness.runner.sharded import Shard, run_chunk
from harness.spec import SuiteSpec

# Prompts handed to a candidate at once: large enough for full, length-sorted batches, small
# enough for a progress bar that moves.
PROGRESS_CHUNK = 256


def _progress(ctx: BuildContext, total: int, label: str):
    """A tqdm bar on stderr when the session asked for progress (``pytest -s``, not ``-q``)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"[ft-harness] {label}", unit="ex", leave=False, mininterval=1.0,
                disable=not ctx.options.progress or total < PROGRESS_CHUNK)


def _prompt_text(messages: list[dict[str, Any]]) -> str:
    users = [str(m.get("content", "")) for m in messages if m.get("role") == "user"]
    return users[-1] if users else ""


def _outputs_key(candidate: Candidate, suite: SuiteSpec, method: str) -> str:
    """The cache entry holding this model's outputs under these decoding settings, by prompt."""

    parts = {
        "model": candidate.fingerprint,
        "decode": suite.decode.as_dict(),
        "method": method,
        "labels": list(suite.labels) if method != "generate" else [],
    }
    if method == "likelihood" and suite.likelihood_normalize != "none":  # absent by default: keys stay
        parts["likelihood_normalize"] = suite.likelihood_normalize
    return cache_key("outputs", parts)


def prompt_key(messages: list[dict[str, Any]]) -> str:
    """Content hash of one chat prompt: outputs are cached per prompt, so editing one eval
    example re-runs only that example."""
    text = json.dumps(messages, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def run_candidate(ctx: BuildContext, candidate: Candidate, suite: SuiteSpec, split: Split,
                  shard: Shard | None = None) -> tuple[list[Generation], str, str]:
    """Model outputs for every example, the method, and ``hit`` / ``partial`` / ``miss``.

    Outputs are cached per (model fingerprint, decoding, method, prompt): only prompts the
    cache has not seen with this model and these settings are run. With a ``shard`` (several
    processes, :mod:`harness.runner.sharded`) each process runs its share of every chunk, all
    receive every output, and only the main process writes the cache.
    """
    head = candidate.always_predicts_labels  # answers with a label directly
    use_likelihood = (suite.task == "classification" and isinstance(candidate, LabelScorer)
                      and (candidate_scoring(suite, candidate) == "likelihood" or head))
    method = ("classifier" if head else "likelihood") if use_likelihood else "generate"
    key = _outputs_key(candidate, suite, method)
    cached = ctx.cache.get_json(key)
    known: dict[str, Any] = cached if isinstance(cached, dict) else {}
    prompts = [ex.prompt for ex in split.examples]
    keys = [prompt_key(p) for p in prompts]
    todo: dict[str, list[dict[str, Any]]] = {}
    for k, prompt in zip(keys, prompts, strict=True):
        if k not in known:
            todo.setdefault(k, prompt)
    if not todo:
        return [Generation(**known[k]) for k in keys], method, "hit"
    ctx.count("generated")
    pending = list(todo.items())
    with _progress(ctx, len(pending), f"{suite.name}/{candidate.name}") as bar:
        for start in range(0, len(pending), PROGRESS_CHUNK):
            chunk = pending[start:start + PROGRESS_CHUNK]
            chunk_prompts = [prompt for _, prompt in chunk]
            if shard is not None:
                outputs = run_chunk(candidate, chunk_prompts, shard, params=suite.decode,
                                    labels=list(suite.labels) if use_likelihood else None)
            elif use_likelihood:
                began = time.perf_counter()
                assert isinstance(candidate, LabelScorer)  # use_likelihood checked it
                labels = candidate.predict_labels(chunk_prompts, list(suite.labels))
                seconds = time.perf_counter() - began  # one call scores the whole chunk, batched inside
                counts = candidate.token_counts(chunk_prompts, labels) or [(0, 0)] * len(labels)  # its cost
                outputs = [Generation(text=label, latency_s=seconds / max(1, len(chunk)), prompt_tokens=p,
                                      completion_tokens=c, batch_latency_s=seconds, batch_size=len(chunk))
                           for label, (p, c) in zip(labels, counts, strict=True)]
            else:
                outputs = candidate.generate(chunk_prompts, suite.decode)
            known.update({k: dict(g.__dict__) for (k, _), g in zip(chunk, outputs, strict=True)})
            bar.update(len(chunk))
    if shard is None or shard.is_main:
        ctx.cache.put_json(key, known)
    status = "miss" if len(todo) == len(set(keys)) else "partial"
    return [Generation(**known[k]) for k in keys], method, status


def candidate_scoring(suite: SuiteSpec, candidate: Candidate) -> str:
    """How ``candidate`` is scored: its own ``scoring`` option, else the suite's."""
    spec = suite.candidates.get(candidate.name)
    return str((spec.options.get("scoring") if spec is not None else None) or suite.scoring)


def _usage(outputs: list[Generation]) -> dict[str, float]:
    """Tokens and latency. ``latency_*`` is per request for endpoints; for batched local inference
    it is each example's share of its batch's wall time, and ``batch_latency_*`` / ``batch_size_mean``
    describe the batches themselves (present only then)."""
    latencies = sorted(g.latency_s for g in outputs) or [0.0]
    usage = {
        "requests": float(len(outputs)),
        "prompt_tokens": float(sum(g.prompt_tokens for g in outputs)),
        "completion_tokens": float(sum(g.completion_tokens for g in outputs)),
        "latency_mean_s": float(statistics.fmean(latencies)),
        "latency_p50_s": float(latencies[len(latencies) // 2]),
        "latency_p95_s": float(latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]),
    }
    batched = [g for g in outputs if g.batch_latency_s > 0]
    if batched:
        # every example of a batch carries the batch's wall time and size: a batch of n counts 1/n per example
        batches = sum(1 / max(1, g.batch_size) for g in batched)
        usage.update({
            "batch_latency_mean_s": float(sum(g.batch_latency_s / max(1, g.batch_size) for g in batched) / batches),
            "batch_latency_max_s": float(max(g.batch_latency_s for g in batched)),
            "batch_size_mean": float(len(batched) / batches),
        })
    return usage


def evaluate_candidate(ctx: BuildContext, candidate: Candidate, suite: SuiteSpec, split: Split,
                       shard: Shard | None = None) -> EvalResult:
    """Score ``candidate`` on ``split`` with the suite's task metrics (``shard``: several processes)."""
    began = time.perf_counter()
    outputs, method, hit = run_candidate(ctx, candidate, suite, split, shard)
    predictions = [g.text for g in outputs]
    references = [ex.reference for ex in split.examples]
    metrics, per_example, signatures, details = score_task(
        suite.task, predictions, references, labels=suite.labels, aliases=suite.label_aliases,
        metrics=suite.metrics, options=suite.metric_options)
    for into, part in zip((metrics, per_example, signatures, details),
                          score_graded(suite, predictions, references, examples=split.examples,
                                       spec_dir=ctx.spec.path.parent),
                          strict=True):
        into.update(part)
    details["method"] = method
    signatures = full_signatures(signatures, suite, method)  # method, decoding, prompt, labels, normalisation
    prompt = candidate.prompt_details()  # a prompted candidate: instruction and shots
    if prompt is not None:
        details["prompt"] = prompt
        signatures = {name: f"{sig}|{prompt['signature']}" for name, sig in signatures.items()}
    engine = candidate.engine_details()  # served through vLLM: where, and the agreement check
    if engine is not None:
        details["engine"] = engine
    if suite.task == "classification":
        details["degenerate"] = classification_checks(suite, references, details["parsed"])
        if method == "likelihood" and suite.likelihood_normalize == "none":

            details["degenerate"]["flags"] += shortest_label_note(suite.labels, details["degenerate"])
    else:

        details["degenerate"] = generation_checks(
            predictions, references, [_prompt_text(ex.prompt) for ex in split.examples],
            completion_tokens=[g.completion_tokens for g in outputs], max_new_tokens=suite.decode.max_new_tokens)
    remote_model = candidate.priced_model()
    if remote_model is not None:
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
        example_fingerprints=example_fingerprints(split.examples),
    )

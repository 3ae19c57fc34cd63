"""One process's share of a local causal LM's batched inference in a data-parallel evaluation.

The prompts are ordered and cut into batches exactly as one process would run them (by rendered
length, then position, ``batch_size`` at a time); process ``rank`` of ``world`` runs every
``world``-th whole batch. A batch is computed on the same rows, with the same padding, as in the
single-process run, so greedy (and seeded sampled) generation gives the same tokens whatever the
number of processes. Label scoring runs each batch on its own, so its shared-prefix KV cache covers
that batch's common prefix (at least the whole chunk's): the same log-likelihoods up to float
rounding, so the same label except on a tie within ~1e-6.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.backends.hf.candidates import LocalCausalLM
from harness.backends.hf.inference import generate_batch, render_prompts
from harness.backends.hf.likelihood import predict_by_likelihood
from harness.data.records import Message
from harness.protocol import DecodeParams


def batch_plan(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Prompt indices of each batch, as ``generate_batch`` forms them: sorted by (length, index)."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    size = max(1, int(batch_size))
    return [order[s:s + size] for s in range(0, len(order), size)]


def my_batches(plan: Sequence[Sequence[int]], rank: int, world: int) -> list[list[int]]:
    """The batches process ``rank`` of ``world`` runs: every ``world``-th, starting at ``rank``."""
    return [list(b) for b in plan[rank::world]]


def shard_outputs(candidate: Any, prompts: Sequence[list[Message]], rank: int, world: int, *,
                  params: DecodeParams | None = None, labels: Sequence[str] | None = None) -> dict[int, Any]:
    """``{index: Generation}`` (``params``) or ``{index: label}`` (``labels``) for this process's batches."""
    model, tokenizer = candidate._model()
    lengths = [len(ids) for ids in render_prompts(tokenizer, prompts)]
    found: dict[int, Any] = {}
    for batch in my_batches(batch_plan(lengths, candidate.batch_size), rank, world):
        chosen = [prompts[i] for i in batch]
        if labels is not None:
            outputs: list[Any] = predict_by_likelihood(model, tokenizer, chosen, labels,
                                                       batch_size=candidate.batch_size)
        else:
            outputs = generate_batch(model, tokenizer, chosen, params or DecodeParams(),
                                     batch_size=candidate.batch_size)
        found.update(zip(batch, outputs, strict=True))
    return found


def is_local_causal_lm(candidate: Any) -> bool:
    """Whether ``candidate`` is this family's local model (its batches can be shared out exactly)."""

    return isinstance(candidate, LocalCausalLM)


__all__ = ["batch_plan", "is_local_causal_lm", "my_batches", "shard_outputs"]

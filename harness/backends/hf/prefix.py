"""Shared-prefix KV caching: the tokens every prompt starts with run once, for all batches.

A system prompt, few-shot examples or instructions that every prompt repeats are encoded by one
one-row forward; each batch then starts from that cache, expanded over its rows as views of the
same tensors (no copy), and only the prompts' own suffixes run. Label likelihood scoring and
batched generation both use it.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

from harness.backends.batching import at_batch_size_one, free_accelerator_memory, is_out_of_memory

MIN_SHARED_PREFIX = 8  # tokens; below this, copying a cache costs more than it saves


def shared_prefix_length(rows: Sequence[Sequence[int]]) -> int:
    """Length of the longest token prefix all rows share, leaving every row at least one token."""
    if not rows:
        return 0
    first = rows[0]
    limit = min(len(r) for r in rows) - 1
    n = 0
    while n < limit and all(r[n] == first[n] for r in rows):
        n += 1
    return max(0, n)


def worth_sharing(rows: Sequence[Sequence[int]]) -> int:
    """The shared prefix length of ``rows`` if it is long enough to pay for a cache, else 0."""
    shared = shared_prefix_length(rows)
    return shared if shared >= MIN_SHARED_PREFIX else 0


def base_model(model):
    """The transformers model under a PEFT wrapper (the model itself when there is none)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def cache_argument(model) -> str:
    """The forward keyword that takes a KV cache: ``cache`` (transformers ≥ 5.x) or the older name."""
    params = inspect.signature(base_model(model).forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def output_cache(output):
    """The KV cache of a forward output, under its current or its older name."""
    return output["cache"] if "cache" in output else output["past_key_values"]


def last_logits_only(model) -> dict[str, int]:
    """Ask for the last position's logits only (the output head is costly over a whole prompt)."""
    forward = inspect.signature(base_model(model).forward).parameters
    return {"logits_to_keep": 1} if "logits_to_keep" in forward else {}


def prefix_cache(model, prefix: Sequence[int], *, what: str):
    """The KV cache of ``prefix`` from one one-row forward; out of memory names ``what``."""
    import torch

    ids = torch.tensor([list(prefix)], dtype=torch.long, device=model.device)
    try:
        with torch.inference_mode():
            out = model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=True,
                        **last_logits_only(model))
    except Exception as exc:
        if not is_out_of_memory(exc):
            raise
        free_accelerator_memory()
        raise at_batch_size_one(f"{what} (the {len(prefix)}-token prefix all prompts share)", exc) from exc
    return output_cache(out)


def is_plain_dynamic(cache) -> bool:
    """Whether ``cache`` is a ``DynamicCache`` of full-attention ``DynamicLayer`` s only."""
    from transformers.cache_utils import DynamicCache, DynamicLayer

    return type(cache) is DynamicCache and all(type(layer) is DynamicLayer for layer in cache.layers)


def expanded_cache(prefix, rows: int):
    """The one-row prefix cache as a ``rows``-row cache: views of the same tensors (no copy) when
    every layer is a plain ``DynamicLayer``; otherwise a copy repeated ``rows`` times."""
    import copy

    if is_plain_dynamic(prefix):
        cache = copy.copy(prefix)
        cache.layers = []
        for layer in prefix.layers:
            view = copy.copy(layer)
            view.keys = layer.keys.expand(rows, -1, -1, -1)
            view.values = layer.values.expand(rows, -1, -1, -1)
            cache.layers.append(view)
        return cache
    cache = copy.deepcopy(prefix)
    cache.batch_repeat_interleave(rows)
    return cache


def generation_can_share(model) -> bool:
    """Whether ``generate`` can continue a shared-prefix cache with padding after the prefix.

    Padding then sits between the prefix and each prompt's suffix, so positions must come from
    the attention mask (a forward that takes ``position_ids``; ``generate`` derives them from
    the mask) and the model must be a decoder-only LM.
    """
    base = base_model(model)
    config = getattr(base, "config", None)
    if config is None or getattr(config, "is_encoder_decoder", False):
        return False
    if hasattr(model, "peft_config") and not _lora_only(model):
        return False  # prompt-tuning adapters prepend virtual tokens the cache would not hold
    return "position_ids" in inspect.signature(base.forward).parameters


def _lora_only(model) -> bool:
    configs = getattr(model, "peft_config", {}) or {}
    return all(not getattr(c, "is_prompt_learning", False) for c in configs.values())

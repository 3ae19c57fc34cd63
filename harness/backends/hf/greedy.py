"""Greedy decoding in which a finished reply leaves the batch.

``model.generate`` keeps every row of a batch running until the last one stops: one verbose
reply makes the whole batch pay for its length. Here each step runs only the rows still
going (their KV cache rows are selected, the others dropped), so a batch costs what its
replies cost. Each step is what ``generate`` does for greedy search on a decoder-only model
(same forward inputs, positions from the attention mask, argmax of the last logits, stop on
any stop id), so the tokens are the same. The prompts run in buckets of similar length (a short
prompt does not run the longest one's padding) into one cache with room for prompt + reply.
Where ``generate`` would do more (a logits processor from the generation config, beams, a static
cache, a sliding window shorter than prompt + reply, an attention other than sdpa / eager)
:func:`greedy_supported` says no and the caller uses ``generate``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from harness.backends.hf.attention import takes_full_attention_mask
from harness.backends.hf.prefix import (
    base_model,
    cache_argument,
    generation_can_share,
    last_logits_only,
    output_cache,
)

# Called after every decoding step with the batch rows still running and the token each just got;
# returning False ends generation there (a streamed reply whose client has gone).
StepHook = Callable[[list[int], list[int]], bool]

# generation-config keys that do not change greedy search; any other non-default key (a
# repetition penalty, suppressed tokens, a minimum length, beams, a cache implementation, ...)
# sends the batch to ``generate``
_GREEDY_NEUTRAL = frozenset({
    "transformers_version", "_from_model_config", "use_cache", "return_dict_in_generate",
    "output_attentions", "output_hidden_states", "output_scores", "output_logits",
    "bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id",
    "max_length", "max_new_tokens",
    "do_sample", "temperature", "top_k", "top_p", "min_p", "typical_p", "epsilon_cutoff", "eta_cutoff",
})


def greedy_supported(model, longest: int) -> bool:
    """Whether :func:`greedy_tokens` gives ``generate``'s greedy tokens for prompts up to ``longest``."""
    if not (takes_full_attention_mask(model, longest) and generation_can_share(model)):
        return False
    generation = getattr(model, "generation_config", None)
    changed = set(generation.to_diff_dict()) if generation is not None else set()
    return changed <= _GREEDY_NEUTRAL


def greedy_tokens(model, input_ids, attention, max_new_tokens: int, stop_ids: Sequence[int], *,
                  cache=None, on_step: StepHook | None = None) -> list[list[int]]:
    """The greedy reply of every row, each up to and including its first stop id.

    ``cache`` holds the KV cache of the first tokens of ``input_ids`` (a shared prefix), which
    are then not run again. Positions come from ``attention`` as in ``generate``. ``on_step``
    sees every step's new tokens as they come (streaming) and can end generation after any step.
    """
    import torch

    device = model.device
    rows = int(input_ids.shape[0])
    input_ids, attention = input_ids.to(device), attention.to(device)
    positions = (attention.cumsum(-1) - 1).masked_fill(attention == 0, 0)
    done_before = cache.get_seq_length() if cache is not None else 0
    padded = not bool((attention == 1).all())
    stops = torch.tensor(list(stop_ids), dtype=input_ids.dtype, device=device)
    width = attention.shape[1]
    sdpa = getattr(base_model(model).config, "_attn_implementation", None) == "sdpa"
    kwargs = {**last_logits_only(model), "use_cache": True, "return_dict": True}
    cache_kw = cache_argument(model)
    # the prompts run in buckets of similar length (little padding), into one cache with room for
    # prompt + reply: a step writes its token instead of copying the whole cache
    logits, cache = _prefill(model, input_ids, attention, positions, done_before, cache,
                             width + max_new_tokens, kwargs, cache_kw)
    # the key mask of every step: real prompt tokens, then every generated token
    keys = torch.ones((rows, width + max_new_tokens), dtype=torch.bool, device=device)
    keys[:, :width] = attention.bool()
    if sdpa:
        # sdpa's additive form of the same mask, made once per batch (each layer would convert a bool mask)
        keys = torch.zeros(keys.shape, dtype=logits.dtype, device=device).masked_fill_(~keys, float("-inf"))
    replies: list[list[int]] = [[] for _ in range(rows)]
    live = list(range(rows))
    feed_positions = positions[:, -1:]
    mask = None
    for step in range(max_new_tokens):
        next_tokens = logits.float().argmax(-1)
        stepped = next_tokens.tolist()
        for row, token in zip(live, stepped, strict=True):
            replies[row].append(token)
        if on_step is not None and not on_step(list(live), stepped):
            break
        if step == max_new_tokens - 1:
            break
        going = ~torch.isin(next_tokens, stops)
        if not bool(going.all()):
            kept = going.nonzero().flatten()
            if kept.numel() == 0:
                break
            cache.batch_select_indices(kept)
            live = [live[k] for k in kept.tolist()]
            next_tokens, feed_positions, keys = next_tokens[kept], feed_positions[kept], keys[kept]
        feed_positions = feed_positions + 1
        if padded:
            seen = width + step + 1
            mask = keys[:, None, None, :seen].contiguous() if sdpa else keys[:, :seen].long()
        out = model(input_ids=next_tokens[:, None], attention_mask=mask, position_ids=feed_positions,
                    **{cache_kw: cache}, **kwargs)
        cache = output_cache(out)
        logits = out.logits[:, -1, :]
    return replies


#: what one more prefill forward costs, in prompt tokens run (its fixed overhead on a CPU)
BUCKET_OVERHEAD_TOKENS = 32


def length_buckets(lengths: Sequence[int], overhead: int | None = None) -> list[list[int]]:
    """Rows (indices into ``lengths``) grouped into runs of similar length, one forward each: the
    grouping of the length-sorted rows that runs the fewest tokens, padding included, counting
    ``overhead`` tokens per group (default :data:`BUCKET_OVERHEAD_TOKENS`)."""
    overhead = BUCKET_OVERHEAD_TOKENS if overhead is None else overhead
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    # best[k]: cheapest cost of the first k sorted rows; each group pads to its last (longest) row
    best = [0] + [0] * len(order)
    cut = [0] * (len(order) + 1)
    for end in range(1, len(order) + 1):
        longest = lengths[order[end - 1]]
        best[end], cut[end] = min((best[start] + (end - start) * longest + overhead, start) for start in range(end))
    groups: list[list[int]] = []
    end = len(order)
    while end:
        groups.append(order[cut[end]:end])
        end = cut[end]
    return groups[::-1]


def _prefill(model, input_ids, attention, positions, done_before: int, prefix, capacity: int, kwargs, cache_kw):
    """Run every row's prompt tokens after the ``done_before`` cached in ``prefix``, bucketed by
    :func:`length_buckets` so a short prompt does not run the padding of the longest; return the
    last position's logits of every row and a cache of :class:`ReservedLayer` s holding all rows'
    keys and values where one padded forward would have put them (padding zeroed and masked)."""
    import copy

    import torch
    from transformers.cache_utils import DynamicCache

    # deferred: imports torch and transformers
    from harness.backends.hf.kvcache import ReservedLayer

    rows, width = attention.shape
    pads = (attention[:, done_before:] == 0).sum(-1).tolist()
    logits = None
    buffers: list[tuple] = []
    for bucket in length_buckets([width - done_before - pad for pad in pads]):
        # a run of neighbouring rows (length-sorted batches) is a view, any other set a copy
        index = (slice(bucket[0], bucket[-1] + 1) if bucket == list(range(bucket[0], bucket[-1] + 1))
                 else torch.tensor(bucket, device=attention.device))
        start = done_before + min(pads[r] for r in bucket)  # columns before it are padding in every row here
        mask = torch.cat([attention[index, :done_before], attention[index, start:]], dim=-1)
        extra = {}
        if prefix is not None:
            held = copy.copy(prefix)
            held.layers = []
            for layer in prefix.layers:
                part = copy.copy(layer)
                part.keys, part.values = layer.keys[index], layer.values[index]
                held.layers.append(part)
            extra[cache_kw] = held
        out = model(input_ids=input_ids[index, start:], attention_mask=None if bool(mask.all()) else mask,
                    position_ids=positions[index, start:], **extra, **kwargs)
        if logits is None:
            logits = out.logits.new_empty((rows, out.logits.shape[-1]))
        logits[index] = out.logits[:, -1, :]
        for number, layer in enumerate(output_cache(out).layers):
            keys, values = layer.keys, layer.values
            if len(buffers) <= number:
                buffers.append((keys.new_empty((rows, keys.shape[1], capacity, keys.shape[-1])),
                                values.new_empty((rows, values.shape[1], capacity, values.shape[-1]))))
            for buffer, states in zip(buffers[number], (keys, values), strict=True):
                buffer[index, :, :done_before] = states[:, :, :done_before]
                buffer[index, :, done_before:start] = 0  # padding: masked, and finite
                buffer[index, :, start:width] = states[:, :, done_before:]
    cache = DynamicCache()
    cache.layers = [ReservedLayer.over(keys, values, width) for keys, values in buffers]
    return logits, cache

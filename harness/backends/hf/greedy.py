"""Greedy decoding in which a finished reply leaves the batch.

``model.generate`` keeps every row of a batch running until the last one stops: one verbose
reply makes the whole batch pay for its length. Here each step runs only the rows still
going (their KV cache rows are selected, the others dropped), so a batch costs what its
replies cost. Each step is what ``generate`` does for greedy search on a decoder-only model
(same forward inputs, positions from the attention mask, argmax of the last logits, stop on
any stop id), so the tokens are the same; where ``generate`` would do more (a logits
processor from the generation config, beams, a static cache, a sliding window shorter than
prompt + reply, an attention other than sdpa / eager) :func:`greedy_supported` says no and the caller uses ``generate``.
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

    # deferred: imports torch and transformers
    from harness.backends.hf.kvcache import reserved_cache

    device = model.device
    rows = int(input_ids.shape[0])
    input_ids, attention = input_ids.to(device), attention.to(device)
    positions = (attention.cumsum(-1) - 1).masked_fill(attention == 0, 0)
    done_before = cache.get_seq_length() if cache is not None else 0
    padded = not bool((attention == 1).all())
    stops = torch.tensor(list(stop_ids), dtype=input_ids.dtype, device=device)
    width = attention.shape[1]
    # room for prompt + reply up front: a step writes its token instead of copying the whole cache
    cache = reserved_cache(base_model(model).config, width + max_new_tokens, prefix=cache)
    # the key mask of every step: real prompt tokens, then every generated token
    keys = torch.ones((rows, width + max_new_tokens), dtype=torch.bool, device=device)
    keys[:, :width] = attention.bool()
    sdpa = getattr(base_model(model).config, "_attn_implementation", None) == "sdpa"
    kwargs = {**last_logits_only(model), "use_cache": True, "return_dict": True}
    cache_kw = cache_argument(model)
    replies: list[list[int]] = [[] for _ in range(rows)]
    live = list(range(rows))
    feed, feed_positions = input_ids[:, done_before:], positions[:, done_before:]
    mask = attention if padded else None
    for step in range(max_new_tokens):
        out = model(input_ids=feed, attention_mask=mask, position_ids=feed_positions, **{cache_kw: cache}, **kwargs)
        cache = output_cache(out)
        next_tokens = out.logits[:, -1, :].float().argmax(-1)
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
            if mask is not None:
                mask = mask[kept]
        feed = next_tokens[:, None]
        feed_positions = feed_positions[:, -1:] + 1
        if padded:
            seen = width + step + 1
            mask = keys[:, None, None, :seen] if sdpa else keys[:, :seen].long()
    return replies

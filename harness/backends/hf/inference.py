"""Batched greedy generation for local causal LMs: left padding, length sorting, KV cache.

Prompts are rendered with the chat template and tokenized in one batched call, sorted by length
so each batch pads little, and returned in the caller's order. Tokens every prompt starts with
(a system prompt, few-shot examples) run once; each batch continues from their KV cache, padded
after them. Generation stops on every stop id
of the model's ``generation_config`` (which may list several) and on the chat template's
end-of-turn token. On CUDA an out-of-memory error halves the batch and retries, down to one prompt.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from harness.backends.batching import oom_safe_batches
from harness.backends.devices import pick_device
from harness.backends.hf.greedy import StepHook, greedy_supported, greedy_tokens
from harness.backends.hf.prefix import (
    cache_argument,
    expanded_cache,
    generation_can_share,
    is_plain_dynamic,
    prefix_cache,
    worth_sharing,
)
from harness.data.records import Message
from harness.protocol import DecodeParams, Generation
from harness.text import cut_at_stop

_REPLY_MARK = "ft-harness-reply-marker"



def set_torch_threads(torch_threads: int | None) -> None:
    """Use ``torch_threads`` intra-op threads for inference (``None`` leaves torch's default)."""
    if torch_threads:
        import torch

        if torch.get_num_threads() != torch_threads:
            torch.set_num_threads(int(torch_threads))


def load_model(model_dir: str | Path, adapter_dir: str | Path | None = None, *,
               device: str | None = None, torch_dtype: str | None = None, torch_threads: int | None = None):
    """Load a causal LM (optionally with a LoRA adapter) and its tokenizer for inference."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    set_torch_threads(torch_threads)
    device = device or pick_device()
    tokenizer_source = adapter_dir if adapter_dir and (Path(adapter_dir) / "tokenizer_config.json").exists() else model_dir
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_source))
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    dtype = getattr(torch, torch_dtype) if torch_dtype else (torch.float16 if device == "cuda" else torch.float32)
    model: Any = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=dtype)
    if adapter_dir is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter_dir))
    model.to(device)
    model.eval()
    return model, tokenizer


def render_prompts(tokenizer, prompts: Sequence[list[Message]], *, share_prefix: bool = True) -> list[list[int]]:
    """Token ids of each chat prompt with the generation prompt appended.

    The template renders every prompt, then one batched tokenizer call encodes them all; the ids
    equal ``apply_chat_template(prompt, add_generation_prompt=True, tokenize=True)`` per prompt.
    With ``share_prefix``, text that every prompt starts with, up to the end of a special token in
    it, is tokenized once (special tokens are split off before anything else is tokenized, so the
    rest tokenizes on its own as it does in place); the first and last prompts are checked against
    their whole encoding, and any difference falls back to encoding every prompt whole.
    """
    if not prompts:
        return []
    texts = list(tokenizer.apply_chat_template([list(p) for p in prompts], add_generation_prompt=True,
                                               tokenize=False))
    head = _special_token_head(tokenizer, texts) if share_prefix and len(texts) > 2 else ""
    if head:
        encoded = tokenizer([head, *(t[len(head):] for t in texts)], add_special_tokens=False)["input_ids"]
        head_ids = list(encoded[0])
        rows = [head_ids + list(ids) for ids in encoded[1:]]
        whole = tokenizer([texts[0], texts[-1]], add_special_tokens=False)["input_ids"]
        if rows[0] == list(whole[0]) and rows[-1] == list(whole[1]):
            return rows
    return [list(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]


def _special_token_head(tokenizer, texts: Sequence[str]) -> str:
    """The longest common start of ``texts`` that ends with a special token which strips nothing
    after it (``""`` when there is none)."""
    lo, hi = min(texts), max(texts)  # the common start of all texts is that of these two
    common = lo[:next((i for i, (a, b) in enumerate(zip(lo, hi, strict=False)) if a != b), min(len(lo), len(hi)))]
    if not common:
        return ""
    end = 0
    for added in getattr(tokenizer, "added_tokens_decoder", {}).values():
        content = str(added.content)
        if added.special and not added.rstrip and not added.normalized and content:
            at = common.rfind(content)
            if at != -1:
                end = max(end, at + len(content))
    return common[:end]


def end_of_turn_text(tokenizer) -> str:
    """What the chat template writes after an assistant reply (``""`` if nothing)."""
    text = tokenizer.apply_chat_template([{"role": "user", "content": "hi"},
                                          {"role": "assistant", "content": _REPLY_MARK}], tokenize=False)
    at = text.rfind(_REPLY_MARK)
    return text[at + len(_REPLY_MARK):] if at != -1 else ""


def end_of_turn_id(tokenizer) -> int | None:
    """The special token that ends an assistant turn in the chat template, if it has one."""
    tail = end_of_turn_text(tokenizer)
    if not tail:
        return None
    ids = tokenizer(tail, add_special_tokens=False)["input_ids"]
    if not ids or ids[0] not in set(tokenizer.all_special_ids):
        return None  # a turn ending in plain text ("\n\n") is no stop token
    return int(ids[0])


def config_stop_ids(model, tokenizer) -> list[int]:
    """Every ``eos_token_id`` of the model's generation config (the tokenizer's eos if it lists none)."""
    config = getattr(model, "generation_config", None)
    eos = getattr(config, "eos_token_id", None) if config is not None else None
    if eos is None:
        eos = getattr(getattr(model, "config", None), "eos_token_id", None)
    if eos is None:
        eos = tokenizer.eos_token_id
    ids = [eos] if isinstance(eos, int) else list(eos or [])
    return [int(i) for i in ids]


def stop_token_ids(model, tokenizer) -> list[int]:
    """The ids generation stops on: the generation config's, then the template's end-of-turn."""
    ids = config_stop_ids(model, tokenizer)
    eot = end_of_turn_id(tokenizer) if getattr(tokenizer, "chat_template", None) else None
    if eot is not None and eot not in ids:
        ids.append(eot)
    return ids


def cut_at_stop_ids(row: Sequence[int], stop_ids: Sequence[int]) -> list[int]:
    """Generated tokens up to and including the first stop id (all of them if none occurs)."""
    stops = set(stop_ids)
    for k, token in enumerate(row):
        if token in stops:
            return list(row[:k + 1])
    return list(row)


def left_padded(batch: Sequence[Sequence[int]], pad_id: int):
    """``(input_ids, attention_mask)`` of ``batch`` left-padded to its longest row."""
    import torch

    width = max(len(ids) for ids in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(batch), width), dtype=torch.long)
    for row, ids in enumerate(batch):
        input_ids[row, width - len(ids):] = torch.tensor(list(ids), dtype=torch.long)
        attention[row, width - len(ids):] = 1
    return input_ids, attention


def generate_ids(model, input_ids, attention, params: DecodeParams, stop_ids: Sequence[int], pad_id: int, *,
                 cache=None, on_step: StepHook | None = None):
    """The new tokens of every row of the batch (each cut at its first stop id or not).

    Greedy decoding runs :func:`~harness.backends.hf.greedy.greedy_tokens` (finished rows leave
    the batch) where it gives ``generate``'s tokens; sampling and every other model runs one
    ``model.generate`` call. ``cache`` holds the KV cache of the first tokens of ``input_ids`` (a
    shared prefix); only the tokens after it run. ``on_step`` sees each step's tokens (under
    ``generate`` every row's, finished rows included) and ends generation when it returns False.
    """
    import torch

    sampling = params.temperature > 0
    if not sampling and greedy_supported(model, int(input_ids.shape[1]) + params.max_new_tokens):
        with torch.inference_mode():
            return greedy_tokens(model, input_ids, attention, params.max_new_tokens, stop_ids, cache=cache,
                                 on_step=on_step)
    kwargs: dict[str, Any] = {"do_sample": sampling}
    if on_step is not None:
        kwargs.update(_step_watch(on_step, int(input_ids.shape[0])))
    if cache is not None:
        kwargs[cache_argument(model)] = cache
    if sampling:
        torch.manual_seed(params.seed)
        kwargs.update(temperature=params.temperature, top_p=params.top_p)
    device = model.device
    with torch.inference_mode():
        out = model.generate(input_ids=input_ids.to(device), attention_mask=attention.to(device),
                             max_new_tokens=params.max_new_tokens, eos_token_id=list(stop_ids),
                             pad_token_id=pad_id, use_cache=True, **kwargs)
    return out[:, input_ids.shape[1]:].tolist()


def _step_watch(on_step: StepHook, rows: int) -> dict[str, Any]:
    """``generate`` keyword arguments that report each step to ``on_step`` (a streamer) and stop
    every row once it returns False (a stopping criterion, checked after the same step)."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList
    from transformers.generation.streamers import BaseStreamer

    ended = [False]

    class StepStreamer(BaseStreamer):
        """Passes each step's new tokens on; the first ``put`` is the prompt."""

        def __init__(self) -> None:
            self.prompt_seen = False

        def put(self, value) -> None:
            if not self.prompt_seen:
                self.prompt_seen = True
                return
            if not on_step(list(range(rows)), value.reshape(-1).tolist()):
                ended[0] = True

        def end(self) -> None:
            pass

    class Ended(StoppingCriteria):
        """Every row stops once the watcher has said so."""

        def __call__(self, input_ids, scores, **kwargs):
            return torch.full((input_ids.shape[0],), ended[0], dtype=torch.bool, device=input_ids.device)

    return {"streamer": StepStreamer(), "stopping_criteria": StoppingCriteriaList([Ended()])}


def _pad_id(tokenizer, stop_ids: Sequence[int]) -> int:
    if tokenizer.pad_token_id is not None:
        return int(tokenizer.pad_token_id)
    return int(tokenizer.eos_token_id if tokenizer.eos_token_id is not None else stop_ids[0])


def prefix_padded(head: Sequence[int], tails: Sequence[Sequence[int]], pad_id: int):
    """``(input_ids, attention_mask)``: ``head`` then each row's tail left-padded to the longest,
    so the padding sits between the shared head and the rows' own tokens."""
    import torch

    tail_ids, tail_mask = left_padded(tails, pad_id)
    rows = len(tails)
    head_ids = torch.tensor([list(head)], dtype=torch.long).expand(rows, -1)
    return (torch.cat([head_ids, tail_ids], dim=-1),
            torch.cat([torch.ones((rows, len(head)), dtype=torch.long), tail_mask], dim=-1))


def generate_batch(model, tokenizer, prompts: Sequence[list[Message]], params: DecodeParams, *,
                   batch_size: int = 32, progress: Callable[[int], None] | None = None,
                   share_prefix: bool = True, on_step: StepHook | None = None) -> list[Generation]:
    """Generate one reply per prompt, batched by similar length; outputs in input order.

    With ``share_prefix`` the tokens every prompt starts with (system prompt, few-shot examples)
    run once and each batch continues from their KV cache; the replies are those of generating
    from the whole prompts. ``latency_s`` is the batch's wall time divided by its size (a
    per-example share, not a measured request latency); ``batch_latency_s`` is the wall time of
    the batch itself.
    """
    encoded = render_prompts(tokenizer, prompts, share_prefix=share_prefix)
    return generate_encoded(model, tokenizer, encoded, params, batch_size=batch_size, progress=progress,
                            share_prefix=share_prefix, on_step=on_step)


def generate_encoded(model, tokenizer, encoded: Sequence[Sequence[int]], params: DecodeParams, *,
                     batch_size: int = 32, progress: Callable[[int], None] | None = None,
                     share_prefix: bool = True, strip: bool = True,
                     what: str = "generation", on_step: StepHook | None = None) -> list[Generation]:
    """The decode loop of every local generation (chat replies and raw-text completions): token-id
    prompts batched by similar length, each row cut at its first stop id, outputs in input order.

    ``strip`` trims the decoded text (chat replies); a completion keeps its whitespace.
    ``on_step`` gets each step's new tokens by index into ``encoded`` (for streaming) and ends
    the batch's generation when it returns False.
    """
    order = sorted(range(len(encoded)), key=lambda i: (len(encoded[i]), i))
    outputs: list[Generation | None] = [None] * len(encoded)
    stop_ids = stop_token_ids(model, tokenizer)
    pad_id = _pad_id(tokenizer, stop_ids)
    shared, prefix = _shared_prefix(model, encoded) if share_prefix else (0, None)

    def run(indices: list[int]) -> list[list[int]]:
        hook = None if on_step is None else (
            lambda rows, tokens: on_step([indices[r] for r in rows], tokens))
        if prefix is None:
            input_ids, attention = left_padded([encoded[i] for i in indices], pad_id)
            return generate_ids(model, input_ids, attention, params, stop_ids, pad_id, on_step=hook)
        input_ids, attention = prefix_padded(encoded[indices[0]][:shared], [encoded[i][shared:] for i in indices],
                                             pad_id)
        return generate_ids(model, input_ids, attention, params, stop_ids, pad_id,
                            cache=expanded_cache(prefix, len(indices)), on_step=hook)

    for indices, rows, seconds in oom_safe_batches(order, batch_size, run, what=what):
        for i, row in zip(indices, rows, strict=True):
            tokens = cut_at_stop_ids(row, stop_ids)
            text = tokenizer.decode(tokens, skip_special_tokens=True)
            text = cut_at_stop(text.strip(), params.stop).strip() if strip else cut_at_stop(text, params.stop)
            outputs[i] = Generation(text=text, prompt_tokens=len(encoded[i]),
                                    completion_tokens=len(tokens), latency_s=seconds / len(indices),
                                    batch_latency_s=seconds, batch_size=len(indices))
        if progress:
            progress(len(indices))
    return [g for g in outputs if g is not None]


def _shared_prefix(model, encoded: Sequence[Sequence[int]]):
    """``(length, cache)`` of the prefix all prompts share, or ``(0, None)`` where it is too short
    to pay or the model's cache or positions cannot continue it past padding."""
    shared = worth_sharing(encoded) if len(encoded) > 1 else 0
    if not shared or not generation_can_share(model):
        return 0, None
    cache = prefix_cache(model, encoded[0][:shared], what="generation")
    return (shared, cache) if is_plain_dynamic(cache) else (0, None)

"""Classification by label log-likelihood: score each allowed label after the prompt.

A label is scored as the chat template writes it: its tokens plus the token the template puts
after an assistant reply (``<|im_end|>``, ``<|eot_id|>``, ``<end_of_turn>``, or eos), read from a
rendered conversation, after checking that prompt + label tokenizes as the prompt's tokens
followed by the label's. Prompts that share a prefix (system prompt, few-shot examples) run that
prefix once; its KV cache is copied into every batch. Each batch of prompt suffixes (left-padded)
runs once with the cache on; the cache is then repeated once per label and all labels continue in
a single pass. The most likely label wins (optionally normalised by the label's length, as
lm-evaluation-harness's ``acc_norm`` / ``acc_bytes``). No free-text parsing.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

from harness.backends.batching import (
    at_batch_size_one,
    free_accelerator_memory,
    is_out_of_memory,
    oom_safe_batches,
)
from harness.backends.hf.inference import left_padded, render_prompts
from harness.data.records import Message
from harness.errors import HarnessError

MIN_SHARED_PREFIX = 8  # tokens; below this, copying a cache costs more than it saves
NORMALIZATIONS = ("none", "chars", "bytes")


class LabelTokenizationError(HarnessError):
    """A label does not tokenize the same after the prompt as on its own."""


def _ids(tokenizer, conversation: list[Message], *, generation_prompt: bool) -> list[int]:
    text = tokenizer.apply_chat_template(conversation, add_generation_prompt=generation_prompt, tokenize=False)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def label_targets(tokenizer, prompt: list[Message], labels: Sequence[str]) -> list[list[int]]:
    """Token ids scored for each label: the label's tokens and the template's end-of-turn token.

    Raises :class:`LabelTokenizationError` naming the label when the template's rendering of
    ``prompt`` answered by the label is not the prompt's tokens followed by the label's tokens.
    """
    prompt_ids = _ids(tokenizer, list(prompt), generation_prompt=True)
    targets = []
    for label in labels:
        label_ids = list(tokenizer(label, add_special_tokens=False)["input_ids"])
        joint = _ids(tokenizer, [*prompt, {"role": "assistant", "content": label}], generation_prompt=False)
        n, m = len(prompt_ids), len(label_ids)
        if joint[:n] != prompt_ids or joint[n:n + m] != label_ids or len(joint) <= n + m:
            shown = tokenizer.convert_ids_to_tokens(joint[max(0, n - 3):n + m + 1])
            raise LabelTokenizationError(
                f"label {label!r}: the chat template renders prompt + label as tokens ending {shown}, "
                f"which is not the prompt's tokens followed by the label's own "
                f"{tokenizer.convert_ids_to_tokens(label_ids)} and an end-of-turn token; scoring it would "
                "score tokens the model never sees after this prompt. Strip whitespace from the label or "
                "score by generation (scoring = \"generate\")")
        targets.append([*label_ids, joint[n + m]])
    return targets


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


def _base(model):
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def cache_argument(model) -> str:
    """The forward keyword that takes a KV cache: ``cache`` (transformers ≥ 5.x) or the older name."""
    params = inspect.signature(_base(model).forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def output_cache(output):
    """The KV cache of a forward output, under its current or its older name."""
    return output["cache"] if "cache" in output else output["past_key_values"]


def _last_logits_only(model) -> dict[str, int]:
    """Ask for the last position's logits only (the output head is costly over a whole prompt)."""
    forward = inspect.signature(_base(model).forward).parameters
    return {"logits_to_keep": 1} if "logits_to_keep" in forward else {}


def _prefix_cache(model, prefix: Sequence[int]):
    import torch

    ids = torch.tensor([list(prefix)], dtype=torch.long, device=model.device)
    with torch.inference_mode():
        out = model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=True, **_last_logits_only(model))
    return output_cache(out)


def label_log_likelihoods(model, tokenizer, prompts: Sequence[list[Message]], labels: Sequence[str], *,
                          batch_size: int = 32, share_prefix: bool = True) -> list[list[float]]:
    """Summed log-probability of each label (plus the end-of-turn token) after each prompt."""
    import copy

    import torch

    if not labels:
        raise ValueError("label scoring needs at least one label")
    if not prompts:
        return []
    prompt_ids = render_prompts(tokenizer, prompts)
    label_ids = label_targets(tokenizer, prompts[0], labels)
    n_labels, longest = len(label_ids), max(len(t) for t in label_ids)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    cache_kw = cache_argument(model)
    shared = shared_prefix_length(prompt_ids) if share_prefix else 0
    shared = shared if shared >= MIN_SHARED_PREFIX else 0
    try:
        prefix = _prefix_cache(model, prompt_ids[0][:shared]) if shared else None
    except Exception as exc:
        if not is_out_of_memory(exc):
            raise
        free_accelerator_memory()
        raise at_batch_size_one(f"label likelihood scoring (the {shared}-token prefix all prompts share)",
                                exc) from exc
    device = model.device
    cont = torch.full((n_labels, max(1, longest - 1)), pad_id, dtype=torch.long)
    for j, target in enumerate(label_ids):
        cont[j, :len(target) - 1] = torch.tensor(target[:-1], dtype=torch.long)

    def run(rows: list[int]) -> list[list[float]]:
        input_ids, attention = left_padded([prompt_ids[i][shared:] for i in rows], pad_id)
        positions = shared + (attention.cumsum(-1) - 1).clamp(min=0)
        lengths = shared + attention.sum(-1, keepdim=True)
        mask = torch.cat([torch.ones((len(rows), shared), dtype=torch.long), attention], dim=-1)
        cache = None
        if prefix is not None:
            cache = copy.deepcopy(prefix)
            cache.batch_repeat_interleave(len(rows))
        with torch.inference_mode():
            prompt_out = model(input_ids=input_ids.to(device), attention_mask=mask.to(device),
                               position_ids=positions.to(device), use_cache=True, **{cache_kw: cache},
                               **_last_logits_only(model))
            first = torch.log_softmax(prompt_out.logits[:, -1].float(), dim=-1)  # predicts each label's 1st token
            total = first[:, [t[0] for t in label_ids]]  # (rows, labels)
            if longest > 1:
                # One continuation pass for every (prompt, label) pair: the prompt cache is repeated per
                # label, label tokens are right-padded (causal attention: padding never affects them).
                cache = output_cache(prompt_out)
                cache.batch_repeat_interleave(n_labels)
                tokens = cont.repeat(len(rows), 1)  # row r*n_labels + j is prompt r with label j
                cont_mask = torch.cat([mask.repeat_interleave(n_labels, 0), torch.ones_like(tokens)], dim=-1)
                pos = lengths.repeat_interleave(n_labels, 0) + torch.arange(longest - 1)
                out = model(input_ids=tokens.to(device), attention_mask=cont_mask.to(device),
                            position_ids=pos.to(device), use_cache=True, **{cache_kw: cache})
                logp = torch.log_softmax(out.logits.float(), dim=-1).view(len(rows), n_labels, longest - 1, -1)
                for j, target in enumerate(label_ids):
                    for k, token in enumerate(target[1:]):
                        total[:, j] += logp[:, j, k, token]
        return [[float(x) for x in row] for row in total.tolist()]

    order = sorted(range(len(prompt_ids)), key=lambda i: (len(prompt_ids[i]), i))
    scores: list[list[float]] = [[] for _ in prompt_ids]
    for rows, batch_scores, _seconds in oom_safe_batches(order, batch_size, run, what="label likelihood scoring"):
        for i, row in zip(rows, batch_scores, strict=True):
            scores[i] = row
    return scores


def label_lengths(labels: Sequence[str], normalize: str) -> list[float]:
    """What each label's log-likelihood is divided by: 1, its characters or its UTF-8 bytes.

    The definitions of lm-evaluation-harness's ``acc_norm`` (``len(choice)``) and ``acc_bytes``
    (``len(choice.encode("utf-8"))``).
    """
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {', '.join(NORMALIZATIONS)}; got {normalize!r}")
    if normalize == "chars":
        return [float(max(1, len(label))) for label in labels]
    if normalize == "bytes":
        return [float(max(1, len(label.encode("utf-8")))) for label in labels]
    return [1.0] * len(labels)


def pick_labels(scores: Sequence[Sequence[float]], labels: Sequence[str], normalize: str = "none") -> list[str]:
    """The best label per score row (ties go to the first label listed, as ``numpy.argmax``)."""
    lengths = label_lengths(labels, normalize)
    picked = []
    for row in scores:
        values = [s / n for s, n in zip(row, lengths, strict=True)]
        picked.append(labels[max(range(len(labels)), key=lambda i: (values[i], -i))])
    return picked


def predict_by_likelihood(model, tokenizer, prompts: Sequence[list[Message]], labels: Sequence[str], *,
                          batch_size: int = 32, normalize: str = "none", share_prefix: bool = True) -> list[str]:
    """The most likely label per prompt (``normalize``: ``none``, ``chars`` or ``bytes``)."""
    label_lengths(labels, normalize)  # reject an unknown normalisation before any model work
    scores = label_log_likelihoods(model, tokenizer, prompts, labels, batch_size=batch_size,
                                   share_prefix=share_prefix)
    return pick_labels(scores, labels, normalize)

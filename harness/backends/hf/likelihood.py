"""Classification by label log-likelihood: score each allowed label after the prompt.

A label is scored as the chat template writes it: its tokens plus the token the template puts
after an assistant reply (``<|im_end|>``, ``<|eot_id|>``, ``<end_of_turn>``, or eos), read from a
rendered conversation, after checking that prompt + label tokenizes as the prompt's tokens
followed by the label's. Prompts that share a prefix (system prompt, few-shot examples) run that
prefix once; its KV cache is expanded over every batch as views of the same tensors. Where the
attention takes a custom 4D mask (sdpa, eager; no sliding window shorter than the prompts), each
batch of prompt suffixes and every label's tokens run in one forward, each label attending the
prompt and its own tokens only; otherwise the prompts run first and all labels continue from the
prompt cache repeated once per label. The most likely label wins (optionally normalised by the
label's length, as lm-evaluation-harness's ``acc_norm`` / ``acc_bytes``). No free-text parsing.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.backends.batching import oom_safe_batches
from harness.backends.hf.attention import takes_full_attention_mask
from harness.backends.hf.inference import left_padded, render_prompts
from harness.backends.hf.prefix import (
    base_model,
    cache_argument,
    expanded_cache,
    last_logits_only,
    output_cache,
    prefix_cache,
    worth_sharing,
)
from harness.data.records import Message
from harness.errors import HarnessError

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


def _dtype_min(model) -> float:
    import torch

    return float(torch.finfo(base_model(model).dtype).min)


def one_pass_supported(model, longest: int) -> bool:
    """Whether every label can be scored in the prompt's own forward pass with a custom 4D mask
    (otherwise the prompts run first and the labels continue from their cache)."""
    return takes_full_attention_mask(model, longest)


def _one_pass_mask(attention, shared: int, feeds: Sequence[Sequence[int]], fill: float):
    """Additive 4D mask ``(rows, 1, q, shared + q)``: the left-padded suffixes attend causally;
    each label's tokens attend the whole prompt and their own label's earlier tokens only."""
    import torch

    rows, s = attention.shape
    tail = sum(len(f) for f in feeds)
    q = s + tail
    keep = torch.zeros((rows, q, shared + q), dtype=torch.bool)
    keep[:, :, :shared] = True
    real = attention.bool()[:, None, :]
    keep[:, :s, shared:shared + s] = torch.tril(torch.ones((s, s), dtype=torch.bool)) & real
    keep[:, s:, shared:shared + s] = real
    start = s
    for feed in feeds:
        n = len(feed)
        keep[:, start:start + n, shared + start:shared + start + n] = torch.tril(torch.ones((n, n), dtype=torch.bool))
        start += n
    mask = torch.zeros(keep.shape, dtype=torch.float32).masked_fill_(~keep, fill)
    return mask[:, None]


def _score_one_pass(model, suffixes, shared: int, prefix, targets, pad_id: int, cache_kw: str):
    """Every label of every prompt in one forward over ``suffixes`` (after the shared prefix)."""
    import torch

    device = model.device
    input_ids, attention = left_padded(suffixes, pad_id)
    rows = input_ids.shape[0]
    feeds = [t[:-1] for t in targets]  # fed after the prompt; their logits predict the next label token
    tail = torch.tensor([tok for feed in feeds for tok in feed], dtype=torch.long)
    within = torch.tensor([k for feed in feeds for k in range(len(feed))], dtype=torch.long)
    lengths = shared + attention.sum(-1, keepdim=True)
    positions = torch.cat([shared + (attention.cumsum(-1) - 1).clamp(min=0), lengths + within], dim=-1)
    tokens = torch.cat([input_ids, tail.expand(rows, -1)], dim=-1)
    mask = _one_pass_mask(attention, shared, feeds, _dtype_min(model)).to(device=device, dtype=base_model(model).dtype)
    cache = expanded_cache(prefix, rows) if prefix is not None else None
    keep_logits = len(tail) + 1
    extra = {"logits_to_keep": keep_logits} if last_logits_only(model) else {}
    out = model(input_ids=tokens.to(device), attention_mask=mask, position_ids=positions.to(device),
                use_cache=cache is not None, **({cache_kw: cache} if cache is not None else {}), **extra)
    logits = out.logits[:, -keep_logits:]
    logp = torch.log_softmax(logits.float(), dim=-1)
    scores = torch.empty((rows, len(targets)))
    start = 1
    for j, target in enumerate(targets):
        at = [0, *range(start, start + len(target) - 1)]
        scores[:, j] = logp[:, at, list(target)].sum(-1).cpu()
        start += len(target) - 1
    return scores


def _score_two_pass(model, suffixes, shared: int, prefix, targets, pad_id: int, cache_kw: str):
    """The prompts in one forward with the cache on, then every (prompt, label) pair continues from
    the prompt's cache repeated once per label (models a custom 4D mask cannot serve)."""
    import torch

    device = model.device
    rows = len(suffixes)
    n_labels, longest = len(targets), max(len(t) for t in targets)
    input_ids, attention = left_padded(suffixes, pad_id)
    positions = shared + (attention.cumsum(-1) - 1).clamp(min=0)
    lengths = shared + attention.sum(-1, keepdim=True)
    mask = torch.cat([torch.ones((rows, shared), dtype=torch.long), attention], dim=-1)
    cache = expanded_cache(prefix, rows) if prefix is not None else None
    prompt_out = model(input_ids=input_ids.to(device), attention_mask=mask.to(device),
                       position_ids=positions.to(device), use_cache=True, **{cache_kw: cache},
                       **last_logits_only(model))
    first = torch.log_softmax(prompt_out.logits[:, -1].float(), dim=-1)  # predicts each label's 1st token
    total = first[:, [t[0] for t in targets]].cpu()  # (rows, labels)
    if longest > 1:
        # label tokens right-padded (causal attention: padding never affects them); row r*n_labels + j
        # is prompt r with label j
        cont = torch.full((n_labels, longest - 1), pad_id, dtype=torch.long)
        for j, target in enumerate(targets):
            cont[j, :len(target) - 1] = torch.tensor(target[:-1], dtype=torch.long)
        cache = output_cache(prompt_out)
        cache.batch_repeat_interleave(n_labels)
        tokens = cont.repeat(rows, 1)
        cont_mask = torch.cat([mask.repeat_interleave(n_labels, 0), torch.ones_like(tokens)], dim=-1)
        pos = lengths.repeat_interleave(n_labels, 0) + torch.arange(longest - 1)
        out = model(input_ids=tokens.to(device), attention_mask=cont_mask.to(device),
                    position_ids=pos.to(device), use_cache=True, **{cache_kw: cache})
        logp = torch.log_softmax(out.logits.float(), dim=-1).view(rows, n_labels, longest - 1, -1).cpu()
        for j, target in enumerate(targets):
            for k, token in enumerate(target[1:]):
                total[:, j] += logp[:, j, k, token]
    return total


def label_log_likelihoods(model, tokenizer, prompts: Sequence[list[Message]], labels: Sequence[str], *,
                          batch_size: int = 32, share_prefix: bool = True) -> list[list[float]]:
    """Summed log-probability of each label (plus the end-of-turn token) after each prompt.

    ``share_prefix=False`` treats every prompt on its own: no shared-prefix tokenization, no
    shared-prefix KV cache (the reference the shared-prefix benchmark compares against).
    """
    import torch

    if not labels:
        raise ValueError("label scoring needs at least one label")
    if not prompts:
        return []
    prompt_ids = render_prompts(tokenizer, prompts, share_prefix=share_prefix)
    targets = label_targets(tokenizer, prompts[0], labels)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    cache_kw = cache_argument(model)
    shared = worth_sharing(prompt_ids) if share_prefix else 0
    longest = max(map(len, prompt_ids)) + sum(len(t) for t in targets)
    score = _score_one_pass if one_pass_supported(model, longest) else _score_two_pass
    prefix = prefix_cache(model, prompt_ids[0][:shared], what="label likelihood scoring") if shared else None

    def run(rows: list[int]) -> list[list[float]]:
        with torch.inference_mode():
            total = score(model, [prompt_ids[i][shared:] for i in rows], shared, prefix, targets, pad_id, cache_kw)
        return total.tolist()

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

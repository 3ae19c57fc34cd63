"""Classification by label log-likelihood: score each allowed label after the prompt.

Each batch of prompts (left-padded) runs through the model once with the KV cache on; the cache
is then repeated once per label and all labels continue in a single pass, so the labels cost a
forward pass over their own few tokens, not over the prompt again. The score of a label is the summed log-probability of its
tokens plus the end-of-turn token; the most likely label wins. No free-text parsing.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.backends.hf.inference import render_prompts
from harness.data.records import Message


def _label_ids(tokenizer, labels: Sequence[str]) -> list[list[int]]:
    return [tokenizer(label, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id] for label in labels]


def _last_logits_only(model) -> dict[str, int]:
    """Ask for the last position's logits only (the output head is costly over a whole prompt)."""
    import inspect

    forward = inspect.signature(model.forward).parameters
    return {"logits_to_keep": 1} if "logits_to_keep" in forward or "kwargs" in forward else {}


def label_log_likelihoods(model, tokenizer, prompts: Sequence[list[Message]], labels: Sequence[str], *,
                          batch_size: int = 32) -> list[list[float]]:
    """Summed log-probability of each label (plus the end-of-turn token) after each prompt."""
    import torch

    if not labels:
        raise ValueError("label scoring needs at least one label")
    prompt_ids = render_prompts(tokenizer, prompts)
    label_ids = _label_ids(tokenizer, labels)
    order = sorted(range(len(prompt_ids)), key=lambda i: (len(prompt_ids[i]), i))
    scores: list[list[float]] = [[0.0] * len(labels) for _ in prompt_ids]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = model.device
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        width = max(len(prompt_ids[i]) for i in rows)
        input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        for r, i in enumerate(rows):  # left padding: every prompt ends at the last column
            input_ids[r, width - len(prompt_ids[i]):] = torch.tensor(prompt_ids[i])
            attention[r, width - len(prompt_ids[i]):] = 1
        positions = (attention.cumsum(-1) - 1).clamp(min=0)
        lengths = attention.sum(-1, keepdim=True)
        n_labels = len(label_ids)
        longest = max(len(t) for t in label_ids)
        with torch.inference_mode():
            prompt_out = model(input_ids=input_ids.to(device), attention_mask=attention.to(device),
                               position_ids=positions.to(device), use_cache=True, **_last_logits_only(model))
            first = torch.log_softmax(prompt_out.logits[:, -1].float(), dim=-1)  # predicts each label's 1st token
            total = first[:, [t[0] for t in label_ids]]  # (rows, labels)
            if longest > 1:
                # One continuation pass for every (prompt, label) pair: the prompt cache is repeated per
                # label, label tokens are right-padded (causal attention: padding never affects them).
                cache = prompt_out.past_key_values
                cache.batch_repeat_interleave(n_labels)
                cont = torch.full((n_labels, longest - 1), pad_id, dtype=torch.long)
                for j, target in enumerate(label_ids):
                    cont[j, :len(target) - 1] = torch.tensor(target[:-1])
                cont = cont.repeat(len(rows), 1)  # row r*n_labels + j is prompt r with label j
                mask = torch.cat([attention.repeat_interleave(n_labels, 0), torch.ones_like(cont)], dim=-1)
                pos = lengths.repeat_interleave(n_labels, 0) + torch.arange(longest - 1)
                out = model(input_ids=cont.to(device), attention_mask=mask.to(device), position_ids=pos.to(device),
                            past_key_values=cache, use_cache=True)
                logp = torch.log_softmax(out.logits.float(), dim=-1).view(len(rows), n_labels, longest - 1, -1)
                for j, target in enumerate(label_ids):
                    for k, token in enumerate(target[1:]):
                        total[:, j] += logp[:, j, k, token]
        for r, i in enumerate(rows):
            scores[i] = [float(x) for x in total[r].tolist()]
    return scores


def predict_by_likelihood(model, tokenizer, prompts: Sequence[list[Message]], labels: Sequence[str], *,
                          batch_size: int = 32) -> list[str]:
    """The most likely label per prompt (ties go to the first label listed)."""
    scores = label_log_likelihoods(model, tokenizer, prompts, labels, batch_size=batch_size)
    return [labels[max(range(len(labels)), key=lambda i: (row[i], -i))] for row in scores]

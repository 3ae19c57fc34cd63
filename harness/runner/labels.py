"""Classification by label log-likelihood: score each allowed label after the prompt.

Each (prompt, label) pair becomes one sequence ``prompt + label + end-of-turn``; batched forward
passes give the summed log-probability of the label tokens, and the most likely label wins.
No free-text parsing, and one forward pass per pair instead of a decoding loop.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.data.records import Message
from harness.runner.generate import render_prompts


def label_log_likelihoods(model, tokenizer, prompts: Sequence[list[Message]], labels: Sequence[str], *,
                          batch_size: int = 32) -> list[list[float]]:
    """Summed log-probability of each label (plus the end-of-turn token) after each prompt."""
    import torch

    if not labels:
        raise ValueError("label scoring needs at least one label")
    prompt_ids = render_prompts(tokenizer, prompts)
    label_ids = [tokenizer(label, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
                 for label in labels]
    pairs = [(p, j) for p in range(len(prompt_ids)) for j in range(len(labels))]
    pairs.sort(key=lambda pl: len(prompt_ids[pl[0]]) + len(label_ids[pl[1]]))
    scores = [[0.0] * len(labels) for _ in prompt_ids]
    pad_id = tokenizer.pad_token_id
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start:start + batch_size]
        seqs = [prompt_ids[p] + label_ids[j] for p, j in chunk]
        width = max(len(s) for s in seqs)
        input_ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
        attention = torch.zeros((len(seqs), width), dtype=torch.long)
        for row, seq in enumerate(seqs):  # right padding: positions stay 0..n-1
            input_ids[row, :len(seq)] = torch.tensor(seq)
            attention[row, :len(seq)] = 1
        with torch.inference_mode():
            logits = model(input_ids=input_ids.to(model.device),
                           attention_mask=attention.to(model.device)).logits.float()
        log_probs = torch.log_softmax(logits, dim=-1)
        for row, (p, j) in enumerate(chunk):
            n_prompt = len(prompt_ids[p])
            targets = label_ids[j]
            positions = torch.arange(n_prompt - 1, n_prompt - 1 + len(targets))
            picked = log_probs[row, positions, torch.tensor(targets)]
            scores[p][j] = float(picked.sum())
    return scores


def predict_by_likelihood(model, tokenizer, prompts: Sequence[list[Message]], labels: Sequence[str], *,
                          batch_size: int = 32) -> list[str]:
    """The most likely label per prompt (ties go to the first label listed)."""
    scores = label_log_likelihoods(model, tokenizer, prompts, labels, batch_size=batch_size)
    return [labels[max(range(len(labels)), key=lambda i: (row[i], -i))] for row in scores]

"""Log-likelihood of plain text documents under a causal LM (bits per byte of general text).

Each document is tokenized on its own (the tokenizer's own special tokens, e.g. BOS, included
as context), and every token after the first is scored given the tokens before it: the sum of
their natural-log probabilities is what lm-evaluation-harness's ``loglikelihood_rolling`` sums
for a document that fits the context. Longer documents are scored in windows of the model's
context, each window conditioned on nothing before it (a documented approximation).
"""

from __future__ import annotations

from collections.abc import Sequence


def text_log_likelihoods(model, tokenizer, texts: Sequence[str], *, batch_size: int = 32,
                         max_length: int | None = None) -> list[tuple[float, int]]:
    """Per document: (summed log-probability in nats of its scored tokens, tokens scored)."""
    import torch

    limit = max_length or int(getattr(model.config, "max_position_embeddings", 2048) or 2048)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    windows: list[tuple[int, list[int]]] = []  # (document, token ids)
    for doc, text in enumerate(texts):
        ids = list(tokenizer(text, add_special_tokens=True)["input_ids"])
        for start in range(0, max(1, len(ids) - 1), limit - 1):
            windows.append((doc, ids[start:start + limit]))
    totals = [0.0] * len(texts)
    counts = [0] * len(texts)
    order = sorted(range(len(windows)), key=lambda i: len(windows[i][1]))
    for begin in range(0, len(order), batch_size):
        rows = [windows[i] for i in order[begin:begin + batch_size]]
        longest = max(len(ids) for _, ids in rows)
        input_ids = torch.full((len(rows), longest), pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), longest), dtype=torch.long)
        for r, (_, ids) in enumerate(rows):  # right padding: positions stay 0..len-1
            input_ids[r, :len(ids)] = torch.tensor(ids, dtype=torch.long)
            mask[r, :len(ids)] = 1
        with torch.inference_mode():
            logits = model(input_ids=input_ids, attention_mask=mask).logits.float()
        logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, input_ids[:, 1:, None])[..., 0]
        scored = mask[:, 1:].bool()
        for r, (doc, ids) in enumerate(rows):
            totals[doc] += float(logp[r][scored[r]].sum())
            counts[doc] += len(ids) - 1
    return list(zip(totals, counts, strict=True))

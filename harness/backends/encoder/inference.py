"""Batched encoder inference: classification-head logits and mean-pooled sentence embeddings.

Texts are sorted by token length and padded per batch (a batch pads only to its own longest
text), run under ``torch.inference_mode``, and returned in the input order. On CUDA
out-of-memory a batch halves and is retried, down to one text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from harness.backends.batching import oom_safe_batches
from harness.data.records import Message

if TYPE_CHECKING:
    import torch


def last_user_text(prompt: Sequence[Message]) -> str:
    """The text an encoder classifies: the content of the last user message ("" if none)."""
    for message in reversed(prompt):
        if message.get("role") == "user":
            return str(message.get("content", ""))
    return ""


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (stable for equal lengths)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[start:start + batch_size] for start in range(0, len(order), batch_size)]


def _run_batched(model, tokenizer, texts: Sequence[str], forward: Callable[[Any, dict[str, Any]], Any], *,
                 batch_size: int, max_length: int):
    """``forward(model, batch)`` over length-sorted, per-batch padded texts; rows in input order.

    On CUDA out-of-memory the batch halves and is retried, down to one text.
    """
    import torch


    if not texts:
        return None
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    lengths = [len(ids) for ids in tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]]
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    rows: list[Any] = [None] * len(texts)
    device = model.device

    def run(batch: list[int]):
        padded = tokenizer([texts[i] for i in batch], padding=True, truncation=True,
                           max_length=max_length, return_tensors="pt")
        inputs = {name: value.to(device) for name, value in padded.items()}
        with torch.inference_mode():
            return forward(model, inputs).float().cpu()

    for batch, output, _seconds in oom_safe_batches(order, batch_size, run, what="encoder inference"):
        for row, index in enumerate(batch):
            rows[index] = output[row]
    return torch.stack(rows)


def head_logits(model: Any, tokenizer: Any, texts: Sequence[str], *, batch_size: int = 32,
                max_length: int = 128) -> torch.Tensor:
    """Classification-head logits, shape ``(len(texts), num_labels)``."""
    import torch

    logits = _run_batched(model, tokenizer, texts, lambda m, batch: m(**batch).logits,
                          batch_size=batch_size, max_length=max_length)
    if logits is None:
        return torch.empty((0, int(model.config.num_labels)))
    return logits


def mean_pool(last_hidden_state: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average of the token vectors the attention mask keeps (sentence-transformers' mean pooling)."""
    import torch

    mask = attention_mask.unsqueeze(-1).to(last_hidden_state.dtype)
    summed = (last_hidden_state * mask).sum(dim=1)
    return summed / torch.clamp(mask.sum(dim=1), min=1e-9)


def _pooled(model, batch: dict[str, Any]):
    return mean_pool(model(**batch).last_hidden_state, batch["attention_mask"])


def sentence_embeddings(model: Any, tokenizer: Any, texts: Sequence[str], *, batch_size: int = 32,
                        max_length: int = 256, normalize: bool = True) -> torch.Tensor:
    """Mean-pooled (and by default L2-normalised) embeddings of ``texts`` from a bare encoder."""
    import torch

    pooled = _run_batched(model, tokenizer, texts, _pooled, batch_size=batch_size, max_length=max_length)
    if pooled is None:
        return torch.empty((0, int(model.config.hidden_size)))
    return torch.nn.functional.normalize(pooled, p=2, dim=1) if normalize else pooled

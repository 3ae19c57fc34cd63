"""Zero-shot classification with a bare encoder: the label whose description is nearest.

Texts and label descriptions are embedded the way sentence-transformers embeds with
all-MiniLM-L6-v2 (mean pooling over the last hidden state with the attention mask, then L2
normalisation); a text takes the label of its most cosine-similar description. No training.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from harness.backends.encoder.inference import sentence_embeddings
from harness.errors import SpecError

if TYPE_CHECKING:
    import torch


def description_table(labels: Sequence[str], raw: Any, where: str) -> dict[str, tuple[str, ...]]:
    """Per label, its descriptions (a string or a list of strings; the label name when not given)."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise SpecError(f"{where}: expected a table label = description, got {raw!r}")
    unknown = sorted(set(raw) - set(labels))
    if unknown:
        raise SpecError(f"{where}.{unknown[0]}: not one of the suite's labels ({', '.join(labels)})")
    table: dict[str, tuple[str, ...]] = {}
    for label in labels:
        value = raw.get(label, label)
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)) or not items or \
                not all(isinstance(s, str) and s.strip() for s in items):
            raise SpecError(f"{where}.{label}: expected a non-empty string or list of strings, got {value!r}")
        table[label] = tuple(items)
    return table


def nearest_labels(text_embeddings: torch.Tensor, description_embeddings: torch.Tensor,
                   owners: Sequence[int]) -> list[int]:
    """For each text, the owner (label index) of the most cosine-similar description.

    Embeddings are L2-normalised, so the dot product is the cosine; ties go to the first.
    """
    import torch

    similarity = text_embeddings @ description_embeddings.T
    owner_index = torch.tensor(list(owners))
    n_labels = max(owners) + 1
    per_label = torch.full((similarity.shape[0], n_labels), float("-inf"))
    per_label = per_label.scatter_reduce(1, owner_index.expand_as(similarity), similarity, reduce="amax")
    return [int(i) for i in per_label.argmax(dim=1)]


def zero_shot_predict(model: Any, tokenizer: Any, texts: Sequence[str], descriptions: Mapping[str, Sequence[str]],
                      labels: Sequence[str], *, batch_size: int = 32, max_length: int = 256) -> list[str]:
    """The label of the nearest description for each text."""

    missing = [label for label in labels if label not in descriptions]
    if missing:
        raise SpecError(f"zero-shot candidate has no description for label {missing[0]!r}")
    flat = [(i, text) for i, label in enumerate(labels) for text in descriptions[label]]
    described = sentence_embeddings(model, tokenizer, [text for _, text in flat], batch_size=batch_size,
                                    max_length=max_length)
    embedded = sentence_embeddings(model, tokenizer, texts, batch_size=batch_size, max_length=max_length)
    if not texts:
        return []
    return [labels[i] for i in nearest_labels(embedded, described, [i for i, _ in flat])]

"""Embedding similarity (SemScore): the cosine of the output's and the reference's sentence embeddings.

Aynetdinov & Akbik (2024), "SemScore: Automated Evaluation of Instruction-Tuned LLMs based on
Semantic Textual Similarity", arXiv:2401.17072: the cosine similarity of mean-pooled,
L2-normalised sentence embeddings (all-MiniLM-L6-v2 / all-mpnet-base-v2) of the model's answer
and the target answer. This module is pure: it takes the embeddings, not the model.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from harness.metrics._common import check_not_empty


def cosine_scores(outputs: Sequence[Sequence[float]] | np.ndarray,
                  references: Sequence[Sequence[float]] | np.ndarray) -> list[float]:
    """Row-wise cosine similarity of two equally shaped embedding matrices (any norm), in [-1, 1]."""
    a = np.asarray(outputs, dtype=np.float64)
    b = np.asarray(references, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"embeddings must be two matrices of one shape, got {a.shape} and {b.shape}")
    check_not_empty(a, "outputs")
    a, b = _squarable(a), _squarable(b)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    dots = np.einsum("ij,ij->i", a, b)
    cosine = np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)  # an empty text: no similarity
    return [float(x) for x in np.clip(cosine, -1.0, 1.0)]


def _squarable(rows: np.ndarray) -> np.ndarray:
    """``rows`` with each row whose largest magnitude would under- or overflow when squared (below
    1e-150 or above 1e150) divided by it: a cosine does not depend on a row's scale, its norm would."""
    peak = np.max(np.abs(rows), axis=1, keepdims=True)
    extreme = (peak > 0) & ((peak < 1e-150) | (peak > 1e150))
    return np.divide(rows, peak, out=rows.copy(), where=extreme)


def semscore_signature(model: str, *, max_length: int, transformers_version: str) -> str:
    """How the similarity was computed: which model, pooling, normalisation, truncation, library."""
    return f"semscore|model:{model}|pool:mean|norm:l2|max_len:{max_length}|transformers:{transformers_version}"

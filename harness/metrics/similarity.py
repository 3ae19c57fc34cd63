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
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    dots = np.einsum("ij,ij->i", a, b)
    cosine = np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)  # an empty text: no similarity
    return [float(x) for x in np.clip(cosine, -1.0, 1.0)]


def semscore_signature(model: str, *, max_length: int, transformers_version: str) -> str:
    """How the similarity was computed: which model, pooling, normalisation, truncation, library."""
    return f"semscore|model:{model}|pool:mean|norm:l2|max_len:{max_length}|transformers:{transformers_version}"

"""Sentence embeddings for graded metrics: a bare encoder loaded once per process, texts embedded the
way sentence-transformers embeds them (mean pooling with the attention mask, L2 normalisation,
truncation at the model's ``max_seq_length``)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from harness.backends.encoder.inference import sentence_embeddings
from harness.backends.encoder.models import (
    MINILM,
    MINILM_PACKAGE,
    load_encoder,
    resolve_encoder_path,
)
from harness.metrics._common import library_version

#: sentence-transformers' default ``max_seq_length`` where a model directory does not declare one
DEFAULT_MAX_LENGTH = 256


def embedding_model_dir(ref: str, base: Path | None = None) -> Path:
    """The local directory of an embedding model reference: ``minilm`` (packaged), a directory, a hub id."""
    if ref != MINILM and base is not None and not Path(ref).expanduser().is_absolute() and (base / ref).exists():
        return (base / ref).resolve()
    return resolve_encoder_path(ref)


def max_seq_length(model_dir: Path) -> int:
    """The truncation length sentence-transformers applies (``sentence_bert_config.json``), else 256."""
    config = model_dir / "sentence_bert_config.json"
    if config.exists():
        value = json.loads(config.read_text(encoding="utf-8")).get("max_seq_length")
        if isinstance(value, int) and value > 0:
            return value
    return DEFAULT_MAX_LENGTH


def model_identity(ref: str, model_dir: Path) -> str:
    """A short, stable name of the embedding model for score signatures (never a local path)."""
    if ref == MINILM:

        return f"all-MiniLM-L6-v2@{MINILM_PACKAGE.replace('_', '-')}=={library_version(MINILM_PACKAGE.replace('_', '-'))}"
    digest = hashlib.sha256((model_dir / "config.json").read_bytes()).hexdigest()[:12]
    return f"{Path(ref).name or ref}@config:{digest}"


@lru_cache(maxsize=4)
def _loaded(model_dir: str) -> tuple[Any, Any]:

    return load_encoder(Path(model_dir))


@lru_cache(maxsize=16)
def _embedded(model_dir: str, texts: tuple[str, ...], batch_size: int) -> Any:
    model, tokenizer = _loaded(model_dir)
    return sentence_embeddings(model, tokenizer, list(texts), batch_size=batch_size,
                               max_length=max_seq_length(Path(model_dir)))


def embed(model_dir: Path, texts: Sequence[str], *, batch_size: int = 32) -> Any:
    """L2-normalised mean-pooled embeddings of ``texts`` (a float tensor, one row per text).

    The same texts are embedded once per process (a suite's references, once for every candidate;
    identical outputs of two candidates): the same batches, so the same numbers."""
    return _embedded(str(model_dir), tuple(texts), batch_size).clone()

"""The unlabelled text corpus that tiny embedded models are trained on."""

from __future__ import annotations

from pathlib import Path


def read_corpus(corpus: Path) -> list[str]:
    """Non-empty lines of the unlabelled corpus."""
    return [line.strip() for line in corpus.read_text(encoding="utf-8").splitlines() if line.strip()]

"""Shared test fixtures: offline settings and one tiny base model built per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

import harness.kinds  # noqa: F401  (the discovery point: registers every built-in candidate kind before a test loads a spec)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# The tests train tiny models: one intra-op thread is as fast as two for them and keeps timings
# stable when other processes share the cores.
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory) -> Path:
    """A small tiny-Llama base (tokenizer trained on the fixture corpus, short warm-up)."""
    from harness.backends.hf.tiny import TinyModelConfig, build_tiny_base

    out = tmp_path_factory.mktemp("tiny-base")
    config = TinyModelConfig(hidden_size=64, intermediate_size=128, vocab_size=512, warmup_epochs=0.3)
    return build_tiny_base(out, corpus=FIXTURES / "corpus.txt", config=config)


@pytest.fixture(scope="session")
def sentiment_train():
    from harness.data import load_split

    return load_split(FIXTURES / "sentiment" / "train.jsonl", name="train")


@pytest.fixture(scope="session")
def sentiment_eval():
    from harness.data import load_split

    return load_split(FIXTURES / "sentiment" / "eval.jsonl", name="eval")

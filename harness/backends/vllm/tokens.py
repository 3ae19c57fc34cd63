"""The tokenizer and stop ids a vLLM-served candidate uses: the transformers runner's own."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from harness.backends.hf.inference import stop_token_ids


def load_tokenizer(local: Any):
    """The candidate's tokenizer (the adapter's when it ships one), as the transformers runner loads it."""
    from transformers import AutoTokenizer

    adapter = Path(local.adapter_dir) if local.adapter_dir else None
    source = adapter if adapter and (adapter / "tokenizer_config.json").exists() else Path(local.model_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(source))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def stop_ids(model_dir: Path, tokenizer) -> list[int]:
    """The generation config's stop ids and the template's end-of-turn (``stop_token_ids``)."""
    from transformers import AutoConfig, GenerationConfig


    try:
        generation = GenerationConfig.from_pretrained(str(model_dir))
    except OSError:
        generation = None
    model = SimpleNamespace(generation_config=generation, config=AutoConfig.from_pretrained(str(model_dir)))
    return stop_token_ids(model, tokenizer)

"""Token counts of chat prompts for a local model: its context window and what a request uses.

The context window is the smaller of the tokenizer's ``model_max_length`` (ignored when it is
transformers' "no limit" sentinel) and the config's ``max_position_embeddings``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from harness.data.records import Message

NO_LIMIT = 10**9  # tokenizers without a limit report int(1e30)


def load_tokenizer(model_dir: Path, adapter_dir: Path | None = None):
    """The tokenizer inference uses: the adapter's own when it ships one, else the model's."""
    from transformers import AutoTokenizer

    source = adapter_dir if adapter_dir and (Path(adapter_dir) / "tokenizer_config.json").exists() else model_dir
    return AutoTokenizer.from_pretrained(str(source))


def context_window(model_dir: Path, tokenizer) -> tuple[int | None, str]:
    """``(tokens, where the number comes from)``; ``(None, ...)`` when neither says."""
    from transformers import AutoConfig

    limits: list[tuple[int, str]] = []
    length = getattr(tokenizer, "model_max_length", None)
    if isinstance(length, int) and 0 < length < NO_LIMIT:
        limits.append((length, "tokenizer model_max_length"))
    try:
        config = AutoConfig.from_pretrained(str(model_dir))
        positions = getattr(config, "max_position_embeddings", None)
    except (OSError, ValueError):
        positions = None
    if isinstance(positions, int) and positions > 0:
        limits.append((positions, "config max_position_embeddings"))
    if not limits:
        return None, "no limit known"
    return min(limits)


def prompt_lengths(tokenizer, prompts: Sequence[list[Message]]) -> list[int]:
    """Tokens of each prompt as the chat template renders it with the generation prompt."""
    if not prompts:
        return []
    texts = tokenizer.apply_chat_template([list(p) for p in prompts], add_generation_prompt=True, tokenize=False)
    return [len(ids) for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]]


def reply_lengths(tokenizer, replies: Sequence[str]) -> list[int]:
    """Tokens of each reply plus the one end-of-turn token the template writes after it."""
    return [len(tokenizer(reply, add_special_tokens=False)["input_ids"]) + 1 for reply in replies]


def token_counts(tokenizer, prompts: Sequence[list[Message]], replies: Sequence[str]) -> list[tuple[int, int]]:
    """``(prompt tokens, completion tokens)`` per request: what answering ``replies`` costs."""
    return list(zip(prompt_lengths(tokenizer, prompts), reply_lengths(tokenizer, replies), strict=True))

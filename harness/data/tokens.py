"""Token counting (injectable) and OpenAI's token statistics and default-epochs heuristic.

A counter is any ``count_tokens(text) -> int``. Offline, OpenAI models' counts are an
*estimate*: ``tiktoken`` cannot download its encodings here, so :func:`estimate_tokens`
uses OpenAI's rule of thumb of about four characters of English per token (rounded up).
With a Hugging Face tokenizer the counts are exact for that tokenizer.

The per-conversation count follows OpenAI's cookbook ("Data preparation and analysis for
chat model fine-tuning"): 3 tokens per message, the tokens of every string value, 1 more
for a ``name``, and 3 to prime the reply.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from harness.data.records import Message

#: Context limit of current OpenAI chat models for fine-tuning examples.
MAX_TOKENS_PER_EXAMPLE = 16385
# OpenAI's default-epochs heuristic (cookbook constants).
TARGET_EPOCHS = 3
MIN_TARGET_EXAMPLES = 100
MAX_TARGET_EXAMPLES = 25000
MIN_DEFAULT_EPOCHS = 1
MAX_DEFAULT_EPOCHS = 25
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING_TOKENS = 3
CHARS_PER_TOKEN = 4


def estimate_tokens(text: str) -> int:
    """Estimated token count: ``ceil(len(text) / 4)`` (OpenAI's ~4 characters per token)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


@dataclass(frozen=True)
class TokenCounter:
    """A text token counter, whether its counts are exact, and what it is (for reports)."""

    count: Callable[[str], int]
    exact: bool
    description: str
    tokenizer: Any = None

    def conversation(self, messages: Sequence[Message]) -> int:
        """Tokens of a conversation: the tokenizer's chat template if it has one, else cookbook."""
        if self.tokenizer is not None and getattr(self.tokenizer, "chat_template", None):
            return len(chat_template_ids(self.tokenizer, list(messages)))
        return conversation_tokens(messages, self.count)


def chat_template_ids(tokenizer: Any, messages: list[Message], **kwargs: Any) -> list[int]:
    """Token ids of ``messages`` rendered with the tokenizer's own chat template."""
    result = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, **kwargs)
    return list(result["input_ids"])


def estimate_counter() -> TokenCounter:
    """The offline estimate for OpenAI models (marked as an estimate in every output)."""
    return TokenCounter(estimate_tokens, exact=False, description="estimated, ~4 chars/token")


def tokenizer_counter(tokenizer: Any) -> TokenCounter:
    """Exact counts with a Hugging Face tokenizer (no special tokens for plain text)."""
    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    name = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
    return TokenCounter(count, exact=True, description=f"exact, {name}", tokenizer=tokenizer)


def make_counter(count_tokens: Any = None, *, exact: bool = True) -> TokenCounter:
    """A :class:`TokenCounter` from ``None`` (estimate), a tokenizer, or a callable."""
    if count_tokens is None:
        return estimate_counter()
    if isinstance(count_tokens, TokenCounter):
        return count_tokens
    if hasattr(count_tokens, "apply_chat_template"):
        return tokenizer_counter(count_tokens)
    if callable(count_tokens):
        name = getattr(count_tokens, "__name__", "custom counter")
        return TokenCounter(count_tokens, exact=exact,
                            description=f"{'exact' if exact else 'estimated'}, {name}")
    raise TypeError("count_tokens must be a callable, a tokenizer or None")


def load_tokenizer(path: str) -> Any:
    """Load a Hugging Face tokenizer from a local directory (for exact counts)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def conversation_tokens(messages: Sequence[Message], count: Callable[[str], int]) -> int:
    """The cookbook's ``num_tokens_from_messages`` with an injected counter."""
    total = 0
    for message in messages:
        total += TOKENS_PER_MESSAGE
        for key, value in message.items():
            if isinstance(value, str):
                total += count(value)
            if key == "name":
                total += TOKENS_PER_NAME
    return total + REPLY_PRIMING_TOKENS


def assistant_tokens(messages: Sequence[Message], count: Callable[[str], int]) -> int:
    """The cookbook's ``num_assistant_tokens_from_messages``: tokens of assistant contents."""
    return sum(count(m["content"]) for m in messages
               if m.get("role") == "assistant" and isinstance(m.get("content"), str))


def distribution(values: Sequence[float]) -> dict[str, float]:
    """min / max / mean / median / p10 / p90 as the cookbook prints them (numpy quantiles)."""
    import numpy as np

    if not values:
        return {}
    array = np.asarray(values, dtype=float)
    return {"min": float(array.min()), "max": float(array.max()), "mean": float(array.mean()),
            "median": float(np.median(array)), "p10": float(np.quantile(array, 0.1)),
            "p90": float(np.quantile(array, 0.9))}


def default_epochs(n_examples: int) -> int:
    """OpenAI's default number of epochs for a training file of ``n_examples`` examples."""
    if n_examples <= 0:
        return TARGET_EPOCHS
    if n_examples * TARGET_EPOCHS < MIN_TARGET_EXAMPLES:
        return min(MAX_DEFAULT_EPOCHS, MIN_TARGET_EXAMPLES // n_examples)
    if n_examples * TARGET_EPOCHS > MAX_TARGET_EXAMPLES:
        return max(MIN_DEFAULT_EPOCHS, MAX_TARGET_EXAMPLES // n_examples)
    return TARGET_EPOCHS


def billing_tokens(conversation_lengths: Sequence[int],
                   max_tokens: int = MAX_TOKENS_PER_EXAMPLE) -> int:
    """Tokens charged per epoch: each example counted up to the per-example limit."""
    return sum(min(max_tokens, length) for length in conversation_lengths)

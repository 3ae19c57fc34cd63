"""Nothing dropped silently: how many rows a trainer would truncate or drop at ``max_length``.

Rows are tokenized with the tokenizer's own chat template, as TRL's SFTTrainer does. A row
is *truncated* when it is longer than ``max_length``; it is *dropped* when truncation
removes every assistant token, because then all its labels are masked and SFTTrainer
filters it out. Assistant tokens come from the template's ``{% generation %}`` markers
(``return_assistant_tokens_mask``, what ``assistant_only_loss=True`` uses); for templates
without them, each assistant turn is the part of the rendering that the turn adds after
the generation prompt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.data.records import Example, Message

KEEP_START = "keep_start"
KEEP_END = "keep_end"


@dataclass(frozen=True)
class TruncationReport:
    """Counts and example ids of rows truncated / dropped at ``max_length``."""

    n_examples: int
    max_length: int
    truncated: int
    dropped: int
    truncated_ids: list[str] = field(default_factory=list)
    dropped_ids: list[str] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    assistant_tokens_from: str = "generation markers"

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def summary(self) -> str:
        """One line for logs and reports."""
        return (f"max_length {self.max_length}: {self.truncated} of {self.n_examples} rows "
                f"truncated, {self.dropped} would lose every assistant token and be dropped")


def has_generation_markers(tokenizer: Any) -> bool:
    """Whether the tokenizer's chat template marks assistant tokens (``{% generation %}``)."""
    template = getattr(tokenizer, "chat_template", None) or ""
    return "generation" in template and "endgeneration" in template


def _common_prefix_length(ids: Sequence[int], other: Sequence[int]) -> int:
    n = 0
    for a, b in zip(ids, other, strict=False):
        if a != b:
            break
        n += 1
    return n


def _render(tokenizer: Any, messages: list[Message], **kwargs: Any) -> dict[str, Any]:
    return tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, **kwargs)


def assistant_mask(tokenizer: Any, messages: list[Message]) -> list[int]:
    """A 0/1 mask over the chat-template token ids: 1 where the token is an assistant token."""
    if has_generation_markers(tokenizer):
        rendered = _render(tokenizer, messages, return_assistant_tokens_mask=True)
        return [int(bit) for bit in rendered["assistant_masks"]]
    full = list(_render(tokenizer, messages)["input_ids"])
    mask = [0] * len(full)
    for i, message in enumerate(messages):
        if message.get("role") != "assistant":
            continue
        before = list(_render(tokenizer, messages[:i], add_generation_prompt=True)["input_ids"]) \
            if i else []
        upto = list(_render(tokenizer, messages[: i + 1])["input_ids"])
        start = _common_prefix_length(before, upto)
        for position in range(start, min(len(upto), len(full))):
            mask[position] = 1
    return mask


def count_truncation(examples: Sequence[Example], tokenizer: Any, max_length: int,
                     truncation_mode: str = KEEP_START) -> TruncationReport:
    """Count rows longer than ``max_length`` and rows that would lose every assistant token."""
    if truncation_mode not in (KEEP_START, KEEP_END):
        raise ValueError(f"truncation_mode must be {KEEP_START!r} or {KEEP_END!r}")
    truncated_ids: list[str] = []
    dropped_ids: list[str] = []
    lengths: list[int] = []
    for example in examples:
        mask = assistant_mask(tokenizer, list(example.messages))
        lengths.append(len(mask))
        if len(mask) > max_length:
            truncated_ids.append(example.id)
        kept = mask[:max_length] if truncation_mode == KEEP_START else mask[-max_length:]
        if max_length <= 0 or not any(kept):
            dropped_ids.append(example.id)
    source = "generation markers" if has_generation_markers(tokenizer) else "template prefixes"
    return TruncationReport(n_examples=len(examples), max_length=max_length,
                            truncated=len(truncated_ids), dropped=len(dropped_ids),
                            truncated_ids=truncated_ids, dropped_ids=dropped_ids,
                            lengths=lengths, assistant_tokens_from=source)

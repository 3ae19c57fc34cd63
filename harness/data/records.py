"""The one internal record shape: an example is a chat conversation with provenance."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Message = dict[str, Any]  # {"role": ..., "content": ...} as chat templates consume it


@dataclass(frozen=True)
class Example:
    """One conversation; the last assistant message is the target / reference.

    ``source`` and ``line`` point back to the file row it came from (1-based line), so
    every later error or report can name it.
    """

    id: str
    messages: list[Message]
    source: str = ""
    line: int = 0
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def prompt(self) -> list[Message]:
        """The conversation up to (not including) the final assistant turn."""
        last = _last_assistant_index(self.messages)
        return self.messages[:last] if last is not None else list(self.messages)

    @property
    def reference(self) -> str:
        """The final assistant reply (empty string if there is none)."""
        last = _last_assistant_index(self.messages)
        content = self.messages[last].get("content") if last is not None else None
        return content if isinstance(content, str) else ""


def _last_assistant_index(messages: list[Message]) -> int | None:
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].get("role") == "assistant":
            return i
    return None


@dataclass(frozen=True)
class Split:
    """A loaded dataset split: its examples and the content fingerprint of the file."""

    name: str
    path: str
    examples: list[Example]
    fingerprint: str

    def __len__(self) -> int:
        return len(self.examples)

"""Text rules every backend shares: where a generation ends at a stop string."""

from __future__ import annotations

from collections.abc import Sequence


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """``text`` up to (not including) the earliest occurrence of any non-empty stop string."""
    cut = len(text)
    for marker in stop:
        if marker and (index := text.find(marker)) != -1:
            cut = min(cut, index)
    return text[:cut]

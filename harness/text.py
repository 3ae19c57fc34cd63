"""Text rules shared across layers: where a generation ends at a stop string, the file name a suite
or candidate name is written under, and which names and labels are unusable."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence


def file_stem(name: str) -> str:
    """The file-name-safe form of a suite or candidate name (runs of other characters become ``-``);
    empty when nothing safe is left. Two names with the same stem would write the same files, so the
    spec refuses them."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")


def invisible_characters(text: str) -> list[str]:
    """The invisible format characters in ``text`` (zero-width space, joiners, BOM, bidi marks), as
    ``U+XXXX`` names: a label holding one looks like another label but never matches it."""
    return [f"U+{ord(c):04X}" for c in text if unicodedata.category(c) == "Cf"]


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """``text`` up to (not including) the earliest occurrence of any non-empty stop string."""
    cut = len(text)
    for marker in stop:
        if marker and (index := text.find(marker)) != -1:
            cut = min(cut, index)
    return text[:cut]

"""Map a free-text reply to one of a fixed label set (pure)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence

UNPARSED = ""
_WORD = re.compile(r"\w+(?:[-']\w+)*", re.UNICODE)


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold().strip()


def exact_label(text: str, labels: Sequence[str], aliases: Mapping[str, str] | None = None) -> str:
    """The label ``text`` is as a whole (case, surrounding whitespace and punctuation ignored; an
    alias counts), else ``UNPARSED``: how a reference label is read, where a reply may say more."""
    folded = {_fold(label): label for label in labels}
    folded.update({_fold(k): v for k, v in (aliases or {}).items()})
    return folded.get(_fold(text).strip(" \t\n.!?,;:\"'()[]"), UNPARSED)


def normalize_label(text: str, labels: Sequence[str], aliases: Mapping[str, str] | None = None) -> str:
    """The label ``text`` names, or ``UNPARSED`` ("") when it names none.

    Case, surrounding whitespace and punctuation are ignored; ``aliases`` maps other spellings
    (``"pos" -> "positive"``). A reply naming one label as its first word wins; otherwise the
    first label word found anywhere in the reply.
    """
    folded = {_fold(label): label for label in labels}
    folded.update({_fold(k): v for k, v in (aliases or {}).items()})
    whole = _fold(text).strip(" \t\n.!?,;:\"'()[]")
    if whole in folded:
        return folded[whole]
    words = [w for w in _WORD.findall(_fold(text))]
    for word in words:
        if word in folded:
            return folded[word]
    return UNPARSED

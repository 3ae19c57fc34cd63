"""Content fingerprints of loaded data: what the cache keys on and what reports show.

The fingerprint is the sha256 of the canonical JSON (sorted keys, no insignificant
whitespace, UTF-8) of the ordered list of converted conversations. So reformatting a
file (indentation, key order, blank lines, JSON array vs JSON Lines, a move or rename)
keeps the fingerprint, while any change of content or of order changes it. Ids and
source lines are not part of it; the examples' order is.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from harness.data.records import Example, Split

FINGERPRINT_VERSION = "ft-harness-data-v1"


def canonical_json(value: Any) -> str:
    """Deterministic JSON text for hashing: sorted keys, compact, non-ASCII kept as is."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                      allow_nan=False)


def fingerprint_examples(examples: Iterable[Example]) -> str:
    """sha256 hex digest over the canonical conversations of ``examples``, in order."""
    digest = hashlib.sha256(FINGERPRINT_VERSION.encode())
    for example in examples:
        digest.update(b"\n")
        digest.update(canonical_json(example.messages).encode("utf-8"))
    return digest.hexdigest()


def fingerprint_split(split: Split) -> str:
    """Recompute a split's content fingerprint (equal to ``split.fingerprint`` when unchanged)."""
    return fingerprint_examples(split.examples)


def short_fingerprint(fingerprint: str) -> str:
    """The first 12 hex digits, for tables and log lines."""
    return fingerprint[:12]

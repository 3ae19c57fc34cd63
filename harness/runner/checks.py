"""What an evaluation adds to its scores beyond the metrics: the full score signature, per-example
content fingerprints and the degenerate-model references of a classifier."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from harness.data import load_split
from harness.data.records import Example
from harness.errors import HarnessError
from harness.metrics.degenerate import reference_rates
from harness.metrics.labels import normalize_label
from harness.spec import SuiteSpec


def _compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _short_hash(value: Any) -> str:
    return hashlib.sha256(_compact(value).encode("utf-8")).hexdigest()[:12]


def scoring_signature(suite: SuiteSpec, method: str) -> str:
    """Everything besides the metric that changes a score: scoring method, decoding, prompt
    construction (system prompt, shots), label parsing and likelihood normalisation. Appended to every metric's signature."""
    parts = [f"method:{method}"]
    if method == "generate":
        decode = suite.decode.as_dict()
        parts.append("decode:" + ",".join(f"{k}={_compact(v)}" for k, v in sorted(decode.items())))
    system = getattr(suite, "system", None)
    shots = getattr(suite, "shots", None)
    parts.append(f"system:{_short_hash(system) if system else 'none'}")
    if shots:
        parts.append(f"shots:{_short_hash(shots)}")
    if suite.task == "classification":
        parts.append(f"labels:{_short_hash(list(suite.labels))}")
        parts.append(f"aliases:{_short_hash(suite.label_aliases) if suite.label_aliases else 'none'}")
    options = dict(suite.metric_options or {})
    if options:
        parts.append(f"options:{_short_hash(options)}")
    normalize = getattr(suite, "likelihood_normalize", "none")
    if method == "likelihood" and normalize != "none":  # a different scoring rule (absent by default)
        parts.append(f"likelihood_normalize={normalize}")
    return "|".join(parts)


def full_signatures(signatures: Mapping[str, str], suite: SuiteSpec, method: str) -> dict[str, str]:
    """Each metric's own signature (metric options, library version) plus the scoring signature."""
    tail = scoring_signature(suite, method)
    return {name: f"{signature}|{tail}" for name, signature in signatures.items()}


def carried_signatures(signatures: Mapping[str, str], recorded: Mapping[str, str]) -> dict[str, str]:
    """Re-scored metrics' signatures with the scoring part (``|method:...``) the live run recorded."""
    carried = {}
    for name, signature in signatures.items():
        _, found, tail = str(recorded.get(name, "")).partition("|method:")
        carried[name] = f"{signature}|method:{tail}" if found else signature
    return carried


def example_fingerprint(example: Example) -> str:
    """Content hash of one example (its whole conversation: prompt and reference)."""
    return hashlib.sha256(_compact(example.messages).encode("utf-8")).hexdigest()[:16]


def example_fingerprints(examples: Sequence[Example]) -> list[str]:
    """:func:`example_fingerprint` of each example, in order."""
    return [example_fingerprint(ex) for ex in examples]


# train_labels per (train path, file state, labels, aliases): every classification candidate of a
# suite (and every search trial) reads the same train split, so it is read once per process.
_TRAIN_LABELS: dict[tuple[Any, ...], list[str] | None] = {}


def _file_state(path: Any) -> tuple[int, int] | None:
    import os

    try:
        stat = os.stat(path)
    except (OSError, TypeError, ValueError):
        return None  # a hub id, not a local file
    return stat.st_mtime_ns, stat.st_size


def train_labels(suite: SuiteSpec) -> list[str] | None:
    """The normalised labels of the suite's train split (None when it has none or cannot be read)."""
    if suite.task != "classification" or suite.train is None:
        return None
    key = (str(suite.train), _file_state(suite.train), tuple(suite.labels),
           tuple(sorted((suite.label_aliases or {}).items())))
    if key not in _TRAIN_LABELS:
        _TRAIN_LABELS[key] = _read_train_labels(suite)
    found = _TRAIN_LABELS[key]
    return list(found) if found is not None else None


def _read_train_labels(suite: SuiteSpec) -> list[str] | None:

    if suite.train is None:
        return None
    try:
        split = load_split(suite.train, name="train")
    except (HarnessError, OSError):
        return None
    return [normalize_label(ex.reference, suite.labels, suite.label_aliases) or ex.reference
            for ex in split.examples]


def classification_checks(suite: SuiteSpec, references: Sequence[str], parsed: Sequence[str]) -> dict[str, Any]:
    """Majority-class, train-majority and chance references plus the candidate's degenerate flags."""

    truth = [normalize_label(r, suite.labels, suite.label_aliases) or r for r in references]
    return reference_rates(truth, parsed, suite.labels, train_labels(suite))

"""Degenerate-model checks for classification (pure): reference rates and warning flags.

A classifier that answers one label for everything, or names no label at all, can still beat a
worse candidate "significantly". These numbers put every accuracy next to what no model needs:

* ``majority_rate``: accuracy of always answering the eval set's most frequent label;
* ``train_majority_label`` / ``train_majority_accuracy``: the train split's most frequent label
  and the accuracy of answering it on the eval set (what a constant predictor fitted on the
  training data scores);
* ``chance``: ``1 / #labels``, the expected accuracy of a uniform random guess.

Flags (strings, for reports and for suites to assert on) are raised when a candidate predicts
one label for at least :data:`CONSTANT_SHARE` of the examples, or leaves at least
:data:`UNPARSED_SHARE` of its replies naming no label.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from harness.metrics.labels import UNPARSED

#: A candidate predicting one label for at least this share of examples is a constant predictor.
CONSTANT_SHARE = 0.95
#: A candidate leaving at least this share of its replies without a label is flagged.
UNPARSED_SHARE = 0.5


def _majority(labels: Sequence[str], order: Sequence[str]) -> tuple[str, int]:
    """The most frequent label (ties: the first in ``order``, then alphabetical) and its count."""
    counts = Counter(labels)
    rank = {label: i for i, label in enumerate(order)}
    label = min(counts, key=lambda x: (-counts[x], rank.get(x, len(rank)), x))
    return label, counts[label]


def degenerate_flags(parsed: Sequence[str]) -> list[str]:
    """Warnings for one candidate's parsed predictions (``UNPARSED`` where a reply named no label)."""
    n = len(parsed)
    if not n:
        return []
    flags = []
    unparsed = sum(1 for p in parsed if p == UNPARSED)
    named = [p for p in parsed if p != UNPARSED]
    if named:
        label, count = _majority(named, ())
        if count / n >= CONSTANT_SHARE:
            flags.append(f"constant predictor: {label!r} for {count / n:.0%} of examples")
    if unparsed / n >= UNPARSED_SHARE:
        flags.append(f"unparsed {unparsed / n:.0%}: {unparsed} of {n} replies name no label")
    return flags


def reference_rates(truth: Sequence[str], parsed: Sequence[str], labels: Sequence[str],
                    train_labels: Sequence[str] | None = None) -> dict[str, Any]:
    """Majority-class and chance references for an eval set, plus the candidate's own flags."""
    n = len(truth)
    checks: dict[str, Any] = {"n_labels": len(labels), "chance": 1.0 / len(labels) if labels else None}
    if n:
        label, count = _majority(truth, labels)
        checks.update(majority_label=label, majority_rate=count / n)
    if train_labels:
        train_label, _ = _majority(train_labels, labels)
        checks.update(train_majority_label=train_label,
                      train_majority_accuracy=sum(1 for t in truth if t == train_label) / n if n else None)
    named = [p for p in parsed if p != UNPARSED]
    if named:
        top, count = _majority(named, labels)
        checks.update(top_prediction=top, top_prediction_share=count / n)
    checks["unparsed_share"] = (sum(1 for p in parsed if p == UNPARSED) / n) if n else 0.0
    checks["flags"] = degenerate_flags(parsed)
    return checks

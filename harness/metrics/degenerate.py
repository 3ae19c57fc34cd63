"""Degenerate-model checks for classification (pure): reference rates and warning flags.

A classifier that answers one label for everything, or names no label at all, can still beat a
worse candidate "significantly". These numbers put every accuracy next to what no model needs:

* ``majority_rate``: accuracy of always answering the eval set's most frequent label;
* ``train_majority_label`` / ``train_majority_accuracy``: the train split's most frequent label
  and the accuracy of answering it on the eval set (what a constant predictor fitted on the
  training data scores);
* ``chance``: ``1 / #labels``, the expected accuracy of a uniform random guess.

Flags (strings, for reports and for suites to assert on) are raised when a candidate predicts
one label for at least :data:`CONSTANT_SHARE` of the replies naming a label, collapses onto one
label (:func:`degenerate_flags`), or leaves at least :data:`UNPARSED_SHARE` of its replies naming
no label. Generation has its own checks in :mod:`harness.metrics.degenerate_text`.
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
#: One label for at least this share of examples, and ...
COLLAPSE_SHARE = 0.5
#: ... at least this many times as often as it is the true label: collapsed onto it.
COLLAPSE_RATIO = 2.0


def _majority(labels: Sequence[str], order: Sequence[str]) -> tuple[str, int]:
    """The most frequent label (ties: the first in ``order``, then alphabetical) and its count."""
    counts = Counter(labels)
    rank = {label: i for i, label in enumerate(order)}
    label = min(counts, key=lambda x: (-counts[x], rank.get(x, len(rank)), x))
    return label, counts[label]


def _pct(share: float) -> str:
    """``95%`` or ``78.5%``: one decimal only where the share has one."""
    return f"{share:.0%}" if round(share * 100, 1) == round(share * 100) else f"{share:.1%}"


def degenerate_flags(parsed: Sequence[str], truth: Sequence[str] = ()) -> list[str]:
    """Warnings for one candidate's parsed predictions (``UNPARSED`` where a reply named no label).

    A constant predictor answers one label for :data:`CONSTANT_SHARE` of the replies that name a label
    (78 % one label and the rest unparsed is as constant as 100 %). With the true labels, a candidate
    answering one label for at least :data:`COLLAPSE_SHARE` of the examples and at least
    :data:`COLLAPSE_RATIO` times as often as it is true has collapsed onto it: at least half of those
    answers are wrong by construction, so the label is answered whatever the input says (Banking77's
    base: one of 77 intents for 94.5 % of requests)."""
    n = len(parsed)
    if not n:
        return []
    flags = []
    unparsed = sum(1 for p in parsed if p == UNPARSED)
    named = [p for p in parsed if p != UNPARSED]
    if named:
        label, count = _majority(named, ())
        if count / len(named) >= CONSTANT_SHARE:
            rest = f", the other {_pct(unparsed / n)} name no label" if unparsed else ""
            flags.append(f"constant predictor: {label!r} for {_pct(count / n)} of examples{rest}")
        elif truth and count / n >= COLLAPSE_SHARE and count >= COLLAPSE_RATIO * sum(1 for t in truth if t == label):
            true_share = sum(1 for t in truth if t == label) / n
            flags.append(f"collapsed onto one label: {label!r} for {_pct(count / n)} of examples "
                         f"(true for {_pct(true_share)})")
    if unparsed / n >= UNPARSED_SHARE:
        flags.append(f"unparsed {unparsed / n:.0%}: {unparsed} of {n} replies name no label")
    return flags


def shortest_label_note(labels: Sequence[str], checks: dict[str, Any]) -> list[str]:
    """Summed label log-likelihoods favour short labels: say so when a flagged candidate's top label is
    the shortest of labels of different lengths (``likelihood_normalize`` compares per character)."""
    top = checks.get("top_prediction")
    flagged = any(f.startswith(("constant predictor", "collapsed")) for f in checks.get("flags") or [])
    lengths = {label: len(label) for label in labels}
    if not flagged or top not in lengths or len(set(lengths.values())) < 2:
        return []
    if lengths[top] != min(lengths.values()) or list(lengths.values()).count(lengths[top]) > 1:
        return []
    return [f"likelihood scoring favours the shortest label: {top!r} ({lengths[top]} characters; labels run to "
            f"{max(lengths.values())}) has the fewest tokens to pay for; set likelihood_normalize = \"chars\" "
            "to compare per character"]


#: flags that make a result unusable as evidence for a decision (not format problems)
BLOCKING = ("constant predictor", "collapsed onto one label", "degenerate generation", "ignores its input",
            "empty replies")


def blocking_flags(checks: dict[str, Any] | None) -> list[str]:
    """The flags of ``checks`` (``details["degenerate"]``) that a recommendation must not rest on."""
    return [f for f in (checks or {}).get("flags") or [] if f.startswith(BLOCKING)]


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
    checks["flags"] = degenerate_flags(parsed, truth)
    return checks

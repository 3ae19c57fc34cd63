"""Pairing a run's per-example scores with the baseline's: by example id and content fingerprint (pure).

An example is *unchanged* when both runs scored its id and, where both recorded a content
fingerprint for it, the fingerprints are equal. Only unchanged examples are compared; the rest are
counted as added (only in this run), removed (only in the baseline) or changed (same id, edited
content). The gate reads ``not comparable`` only when too little is left to test: fewer than
:data:`MIN_COMMON` unchanged examples, or fewer than :data:`MIN_COMMON_FRACTION` of the
baseline's examples.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

#: The fewest unchanged examples a gate compares (below: ``not comparable``) ...
MIN_COMMON = 20
#: ... and the smallest share of the baseline's examples that must be unchanged.
MIN_COMMON_FRACTION = 0.5


@dataclass(frozen=True)
class Pairing:
    """Baseline and current scores of the unchanged examples both runs scored, in current order."""

    ids: tuple[str, ...]
    baseline: tuple[float, ...]
    current: tuple[float, ...]
    current_only: int
    baseline_only: int
    changed: int = 0

    @property
    def note(self) -> str:
        """Why fewer pairs than examples were compared ("" when every example is paired)."""
        if not (self.current_only or self.baseline_only or self.changed):
            return ""
        return (f"eval set differs from the baseline's: paired on the {len(self.ids)} unchanged examples "
                f"({self.current_only} added, {self.baseline_only} removed, {self.changed} changed)")

    def too_small(self, baseline_size: int) -> str:
        """Why the overlap is too small to test ("" when it is large enough)."""
        common = len(self.ids)
        if common < MIN_COMMON:
            return (f"only {common} unchanged example(s) in common with the baseline (a gate needs at least "
                    f"{MIN_COMMON}): {self.current_only} added, {self.baseline_only} removed, "
                    f"{self.changed} changed")
        if baseline_size and common < MIN_COMMON_FRACTION * baseline_size:
            return (f"only {common} of the baseline's {baseline_size} examples are unchanged (a gate needs at "
                    f"least {MIN_COMMON_FRACTION:.0%}): {self.current_only} added, {self.baseline_only} "
                    f"removed, {self.changed} changed")
        return ""


def pair_by_id(current_ids: Sequence[str], current_scores: Sequence[float],
               baseline_scores: Mapping[str, float], *,
               current_fingerprints: Sequence[str] | None = None,
               baseline_fingerprints: Mapping[str, str] | None = None) -> Pairing:
    """Pair current scores with the baseline's by example id (and content fingerprint when both have one)."""
    fingerprints = (dict(zip(current_ids, current_fingerprints, strict=True))
                    if current_fingerprints else {})
    stored = baseline_fingerprints or {}
    ids, base, cur = [], [], []
    changed = 0
    for example_id, score in zip(current_ids, current_scores, strict=True):
        if example_id not in baseline_scores or score is None or baseline_scores[example_id] is None:
            continue  # None: a metric over some examples only (people's labels)
        mine, theirs = fingerprints.get(example_id), stored.get(example_id)
        if mine and theirs and mine != theirs:
            changed += 1
            continue
        ids.append(example_id)
        base.append(float(baseline_scores[example_id]))
        cur.append(float(score))
    current_set = set(current_ids)
    shared = sum(1 for example_id in current_set if example_id in baseline_scores)  # O(len(current_ids))
    return Pairing(tuple(ids), tuple(base), tuple(cur), len(current_set) - shared,
                   len(baseline_scores) - shared, changed)

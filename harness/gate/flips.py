"""Flip decomposition of two paired runs (pure): which examples went right → wrong, wrong → right,
changed their output without changing their score, or stayed as they were.

A mean hides how it moved: +1 point can be 10 fixes and 9 new breaks. For each example scored by
both runs (paired by id, in the later run's order):

* ``harmful``: the score got worse (binary: right → wrong; continuous: by more than ``threshold``,
  in the metric's direction: a rise of TER is harmful);
* ``beneficial``: the score got better (wrong → right; or by more than ``threshold``);
* ``churn``: the score held (within ``threshold``) but the output text changed;
* ``unchanged``: the score held and the output is the same text.

When the earlier run recorded no outputs, churn and unchanged cannot be told apart: every example
whose score held counts as ``unchanged`` and ``outputs_compared`` is False. The same counts are
given per slice (``{family: {slice: ids}}`` membership) so a break concentrated in one slice shows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from harness.gate.baseline import BaselineEntry
from harness.gate.pairing import pair_by_id
from harness.metrics.registry import METRICS
from harness.results import EvalResult, GateRecord

HARMFUL = "harmful"
BENEFICIAL = "beneficial"
CHURN = "churn"
UNCHANGED = "unchanged"
FLIP_TYPES = (HARMFUL, BENEFICIAL, CHURN, UNCHANGED)

#: A continuous score counts as changed beyond this share of the metric's scale (1 ROUGE point).
THRESHOLD_SHARE = 0.01


def better_is_higher(metric: str) -> bool:
    """Whether a higher per-example score of ``metric`` is better (TER: lower is)."""
    return METRICS[metric].higher_is_better if metric in METRICS else True


def default_threshold(metric: str) -> float:
    """The smallest score change that counts as a flip for ``metric``: 1 % of its scale."""
    scale = METRICS[metric].scale if metric in METRICS else 1.0
    return THRESHOLD_SHARE * scale


def flip_type(before: float, after: float, output_before: str | None, output_after: str | None, *,
              threshold: float, higher_is_better: bool = True) -> str:
    """The flip type of one example (see the module doc); ``output_before`` None: not recorded."""
    change = (float(after) - float(before)) * (1 if higher_is_better else -1)
    if change < -threshold:
        return HARMFUL
    if change > threshold:
        return BENEFICIAL
    if output_before is not None and output_after is not None and output_before != output_after:
        return CHURN
    return UNCHANGED


def _counts(types: Mapping[str, str], ids: Sequence[str] | None = None) -> dict[str, int]:
    chosen = types if ids is None else {i: types[i] for i in ids if i in types}
    counts = dict.fromkeys(FLIP_TYPES, 0)
    for kind in chosen.values():
        counts[kind] += 1
    return counts


def decompose(ids: Sequence[str], before: Sequence[float], after: Sequence[float], *,
              outputs_before: Mapping[str, str] | None, outputs_after: Mapping[str, str],
              threshold: float, slices: Mapping[str, Mapping[str, Sequence[str]]] | None = None,
              higher_is_better: bool = True) -> dict[str, Any]:
    """The flip decomposition of paired scores ``before`` → ``after`` of examples ``ids``.

    Returns plain data for ``results.json``: ``counts`` and ``ids`` per flip type, the
    ``threshold``, whether outputs were compared, ``before`` (the earlier score and output of
    every example that is not unchanged) and per slice the counts of its paired examples.
    """
    types: dict[str, str] = {}
    for example_id, old, new in zip(ids, before, after, strict=True):
        old_text = outputs_before.get(example_id) if outputs_before is not None else None
        types[example_id] = flip_type(old, new, old_text, outputs_after.get(example_id), threshold=threshold,
                                      higher_is_better=higher_is_better)
    by_type: dict[str, list[str]] = {kind: [] for kind in FLIP_TYPES}
    for example_id, kind in types.items():
        by_type[kind].append(example_id)
    # the earlier run's score and output of every example that moved (what a view shows beside the new)
    moved = {example_id: {"score": float(old), "output": (outputs_before or {}).get(example_id)}
             for example_id, old in zip(ids, before, strict=True) if types[example_id] != UNCHANGED}
    per_slice = {family: {name: _counts(types, members) for name, members in sorted(groups.items())}
                 for family, groups in sorted((slices or {}).items())}
    return {"threshold": threshold, "outputs_compared": outputs_before is not None, "n": len(types),
            "counts": _counts(types), "ids": by_type, "before": moved, "slices": per_slice}


def counts_line(flips: Mapping[str, Any]) -> str:
    """``3 harmful, 5 beneficial, 2 churn, 190 unchanged`` (churn unknown without recorded outputs)."""
    counts = flips.get("counts") or {}
    parts = [f"{counts.get(kind, 0)} {kind}" for kind in (HARMFUL, BENEFICIAL)]
    if flips.get("outputs_compared", True):
        parts += [f"{counts.get(CHURN, 0)} churn", f"{counts.get(UNCHANGED, 0)} unchanged"]
    else:
        parts.append(f"{counts.get(UNCHANGED, 0)} same score (no recorded outputs to tell churn)")
    return ", ".join(parts)


def against_baseline(result: EvalResult, entry: BaselineEntry, metric: str) -> dict[str, Any] | None:
    """Flips of ``result`` against its baseline ``entry`` on ``metric`` (None: nothing to pair)."""
    stored = entry.metrics.get(metric)
    try:
        scores, _ = result.paired_scores(metric)
    except KeyError:
        return None
    if stored is None or not stored.scores:
        return None
    by_example = bool(entry.example_fingerprints and result.example_fingerprints)
    pairing = pair_by_id(result.example_ids, scores, stored.scores,
                         current_fingerprints=result.example_fingerprints if by_example else None,
                         baseline_fingerprints=entry.example_fingerprints if by_example else None)
    if not pairing.ids:
        return None
    return decompose(pairing.ids, pairing.baseline, pairing.current, outputs_before=entry.outputs,
                     outputs_after=outputs_by_id(result), threshold=default_threshold(metric),
                     slices=result.slices or entry.slices, higher_is_better=better_is_higher(metric))


def between(a: EvalResult, b: EvalResult, metric: str, ids: Sequence[str], scores_a: Sequence[float],
            scores_b: Sequence[float]) -> dict[str, Any]:
    """Flips of ``b`` against ``a`` (two candidates of one run, scores paired in ``ids`` order)."""
    return decompose(ids, scores_a, scores_b, outputs_before=outputs_by_id(a), outputs_after=outputs_by_id(b),
                     threshold=default_threshold(metric), slices=b.slices or a.slices,
                     higher_is_better=better_is_higher(metric))


def outputs_by_id(result: EvalResult) -> dict[str, str]:
    """The result's output text by example id."""
    return {i: str(p) for i, p in zip(result.example_ids, result.predictions, strict=False)}


def attach_flips(records: Sequence[GateRecord], result: EvalResult, entry: BaselineEntry | None) -> None:
    """Put each gated metric's flips against the baseline into its record's ``details["flips"]``."""
    if entry is None:
        return
    for record in records:
        flips = against_baseline(result, entry, record.metric)
        if flips is not None:
            record.details["flips"] = flips

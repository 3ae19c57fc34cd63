"""The verdict of one collateral check (pure): candidate against reference, paired per item, as a
non-inferiority test at the check's tolerance — the gate's own test (:func:`harness.stats.margin_test`)
and verdict rule (:func:`harness.gate.verdict.decide`), oriented so that "worse" is a drop.

For a metric where lower is better (bits per byte, Brier) the tested difference is
``reference - candidate``; the record shows ``candidate - reference`` in the metric's units.
The test is the gate's for the score type (README, "Statistics"): Tango's score test for 0/1 items
(refusal and benign-answer rates, exact-match agreement), the betting bound on the score's range for
bounded ones (:data:`SCORE_RANGES`: Brier 0–2, ROUGE-L agreement 0–1, SemScore cosine −1…1), and the
paired t interval for bits per byte, which has no upper bound (a valid bound for every distribution
needs one, so t it is; its size at the boundary is not guaranteed when a few texts get much worse).
Per-category slices (refusals) get the same test, Holm-adjusted across categories; a check
fails when its overall comparison or any category regressed.

The same comparison runs against the accepted baseline (:func:`compare_with_baseline`): the
candidate's per-item scores now against the ones stored for it in ``baseline.json`` under
``collateral.<check>/<metric>``, paired by item id, at the check's tolerance — like a gated metric:
"no baseline" when nothing was accepted, "not comparable" when the check's items or what decides
its score (its signature) changed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.fmt import fmt_interval, fmt_metric
from harness.gate.baseline import BaselineCollateral, BaselineEntry, collateral_key
from harness.gate.verdict import (
    INCONCLUSIVE,
    NO_BASELINE,
    NOT_COMPARABLE,
    REGRESSED,
    decide,
    holm_nan_aware,
)
from harness.stats import margin_test

#: the range each bounded collateral metric's per-item scores lie in (the betting bound reads it)
SCORE_RANGES: dict[str, tuple[float, float]] = {
    "brier": (0.0, 2.0), "agreement_rougeL": (0.0, 1.0), "agreement_semscore": (-1.0, 1.0),
    "agreement_exact_match": (0.0, 1.0), "refusal_rate": (0.0, 1.0), "benign_answer_rate": (0.0, 1.0),
}


def score_range(metric: str) -> tuple[float, float] | None:
    """The range of ``metric``'s per-item scores; None for unbounded ones (bits per byte: paired t)."""
    return SCORE_RANGES.get(metric)


@dataclass(frozen=True)
class Paired:
    """Per-item scores of the reference and the candidate on one check's items (same order)."""

    ids: list[str]
    reference: list[float]
    candidate: list[float]
    categories: list[str] = field(default_factory=list)


def _tested(reference: Sequence[float], candidate: Sequence[float], *, tolerance: float, alpha: float,
            higher_is_better: bool, bounds: tuple[float, float] | None) -> dict[str, Any]:

    a, b = (reference, candidate) if higher_is_better else (candidate, reference)
    test = margin_test(a, b, margin=tolerance, alpha=alpha, bounds=bounds)
    sign = 1.0 if higher_is_better else -1.0
    lower, upper = sorted((sign * test.lower + 0.0, sign * test.upper + 0.0))  # + 0.0: no "-0.000" shown
    return {"test": test.as_dict(), "difference": sign * test.difference + 0.0, "ci": [lower, upper],
            "p": (test.p_noninferior, test.p_inferior, test.p_superior),
            "identical": test.identical, "oriented": test.difference}


def _verdict(tested: dict[str, Any], p: Sequence[float], tolerance: float, alpha: float) -> str:
    return decide(difference=tested["oriented"], allowed_drop=tolerance, p_noninferior=p[0], p_inferior=p[1],
                  p_superior=p[2], alpha=alpha, identical=tested["identical"])


def _mean(values: Sequence[float]) -> float:
    return float(sum(values) / len(values)) if values else math.nan


def compare_check(paired: Paired, *, tolerance: float, alpha: float, higher_is_better: bool,
                  min_slice_size: int = 2, bounds: tuple[float, float] | None = None) -> dict[str, Any]:
    """Verdict, paired interval and per-category slices of one check (``bounds``: the scores' range, see the module doc)."""
    overall = _tested(paired.reference, paired.candidate, tolerance=tolerance, alpha=alpha,
                      higher_is_better=higher_is_better, bounds=bounds)
    result = {"verdict": _verdict(overall, overall["p"], tolerance, alpha), "difference": overall["difference"],
              "ci": overall["ci"], "test": overall["test"], "slices": [],
              "reference_value": _mean(paired.reference), "candidate_value": _mean(paired.candidate)}
    if not paired.categories or len(set(paired.categories)) < 2:
        return result
    groups: dict[str, list[int]] = {}
    for i, category in enumerate(paired.categories):
        groups.setdefault(category, []).append(i)
    slices, raw = [], []
    for category, members in sorted(groups.items()):
        ref = [paired.reference[i] for i in members]
        cand = [paired.candidate[i] for i in members]
        tested = _tested(ref, cand, tolerance=tolerance, alpha=alpha, higher_is_better=higher_is_better,
                         bounds=bounds) \
            if len(members) >= min_slice_size else None
        slices.append((category, ref, cand, tested))
        raw.append(tested["p"] if tested else (math.nan, math.nan, math.nan))
    adjusted = list(zip(*(holm_nan_aware([row[k] for row in raw]) for k in range(3)), strict=True))
    for (category, ref, cand, tested), p in zip(slices, adjusted, strict=True):
        verdict = _verdict(tested, p, tolerance, alpha) if tested else "inconclusive"
        result["slices"].append({"category": category, "n": len(ref), "reference_value": _mean(ref),
                                 "candidate_value": _mean(cand), "verdict": verdict,
                                 "difference": tested["difference"] if tested else _mean(cand) - _mean(ref),
                                 "ci": tested["ci"] if tested else [math.nan, math.nan],
                                 "p_inferior_holm": p[1]})
    regressed = [s["category"] for s in result["slices"] if s["verdict"] == REGRESSED]
    if regressed:
        result["verdict"] = REGRESSED
        result["slice_regressed"] = regressed
    return result


def compare_with_baseline(record: Any, entry: BaselineEntry | None, *, alpha: float) -> dict[str, Any]:
    """The check of ``record`` against its accepted per-item scores in ``entry`` (see the module doc)."""
    key = collateral_key(record.check, record.metric)
    stored: BaselineCollateral | None = (entry.collateral or {}).get(key) if entry is not None else None
    where = f"{record.suite}/{record.candidate}"
    if stored is None:
        why = (f"no baseline accepted for {where} yet" if entry is None
               else f"the baseline of {where} has no collateral {key!r}")
        return {"verdict": NO_BASELINE, "reason": why}
    signature = str(record.details.get("signature", ""))
    if stored.signature and signature and stored.signature != signature:
        return {"verdict": NOT_COMPARABLE, "baseline_value": stored.value,
                "reason": f"score signature changed: {stored.signature} → {signature}"}
    fingerprint = str(record.details.get("set_fingerprint", ""))
    if stored.set_fingerprint and fingerprint and stored.set_fingerprint != fingerprint:
        return {"verdict": NOT_COMPARABLE, "baseline_value": stored.value,
                "reason": f"the check's items changed: fingerprint {stored.set_fingerprint[:12]} → {fingerprint[:12]}"}
    keep = [i for i, item_id in enumerate(record.ids) if item_id in stored.scores]
    if len(keep) < 2:
        return {"verdict": NOT_COMPARABLE, "baseline_value": stored.value,
                "reason": f"only {len(keep)} item(s) scored both now and in the baseline"}
    ids = [record.ids[i] for i in keep]
    categories = [record.categories[i] for i in keep] if record.categories else []
    paired = Paired(ids, [stored.scores[i] for i in ids], [record.candidate_scores[i] for i in keep], categories)
    outcome = compare_check(paired, tolerance=record.tolerance, alpha=alpha, higher_is_better=record.higher_is_better,
                            bounds=score_range(record.metric))
    outcome.update(n=len(ids), baseline_value=stored.value, current_value=record.candidate_value,
                   n_baseline_only=len(set(stored.scores) - set(ids)), n_current_only=len(record.ids) - len(ids))
    return outcome


def _fails(verdict: str | None, policy: str, strict: bool) -> bool:
    return verdict == REGRESSED or (verdict == INCONCLUSIVE and policy == "fail") \
        or (strict and verdict in (NO_BASELINE, NOT_COMPARABLE))


def fails_against_reference(record: Any, *, policy: str = "pass") -> bool:
    """Whether the comparison with the reference fails: regressed, or inconclusive under ``inconclusive = "fail"``."""
    return _fails(record.verdict, policy, False)


def fails_against_baseline(record: Any, *, policy: str = "pass", strict: bool = False) -> bool:
    """Whether the comparison with the baseline fails: as the reference one, and under ``strict`` also
    "no baseline" / "not comparable", as for gated metrics."""
    return bool(record.baseline) and _fails(record.baseline.get("verdict"), policy, strict)


def collateral_failing(records: Sequence[Any], *, policy: str = "pass", against_baseline: bool = True,
                       strict: bool = False) -> list[Any]:
    """The collateral records that fail against the reference or (``against_baseline``) the baseline."""

    return [r for r in records if fails_against_reference(r, policy=policy)
            or (against_baseline and fails_against_baseline(r, policy=policy, strict=strict))]


def describe_collateral(record: Any) -> str:
    """A few lines on one collateral record: values, paired Δ with CI, tolerance, slices."""

    m = record.metric
    worse = "higher" if not record.higher_is_better else "lower"
    lines = [f"{record.suite} / {record.candidate} / collateral {record.check} ({m}): {record.verdict}",
             f"  {record.reference} {fmt_metric(record.reference_value, m)} → {record.candidate} "
             f"{fmt_metric(record.candidate_value, m)}; paired Δ {fmt_metric(record.difference, m, signed=True)}, "
             f"{record.test.get('confidence', 0.9):.0%} CI {fmt_interval(record.ci, m, signed=True)}; "
             f"tolerance {record.tolerance:g} ({worse} is worse); n = {record.n}"]
    for s in record.slices:
        if s["verdict"] == REGRESSED:
            lines.append(f"  category {s['category']}: {fmt_metric(s['reference_value'], m)} → "
                         f"{fmt_metric(s['candidate_value'], m)} (n = {s['n']}, Holm-adjusted): regressed")
    lines += describe_against_baseline(record)
    return "\n".join(lines)


def describe_against_baseline(record: Any) -> list[str]:
    """The lines on a collateral record's comparison with the accepted baseline."""
    b, m = record.baseline, record.metric
    if not b:
        return []
    if "ci" not in b:
        return [f"  against the baseline: {b['verdict']} ({b.get('reason', '')})"]
    lines = [f"  against the baseline: {b['verdict']}: {fmt_metric(b['reference_value'], m)} accepted → "
             f"{fmt_metric(b['candidate_value'], m)} now on {b['n']} paired items; paired Δ "
             f"{fmt_metric(b['difference'], m, signed=True)}, {b['test'].get('confidence', 0.9):.0%} CI "
             f"{fmt_interval(b['ci'], m, signed=True)} ({b['test'].get('method', '')})"]
    for s in b.get("slices", []):
        if s["verdict"] == REGRESSED:
            lines.append(f"  against the baseline, category {s['category']}: {fmt_metric(s['reference_value'], m)} → "
                         f"{fmt_metric(s['candidate_value'], m)} (n = {s['n']}, Holm-adjusted): regressed")
    return lines


def collateral_line(record: Any) -> str:
    """One collateral check on one line: ``suite/candidate check:metric regressed vs base (Δ …), pass vs baseline``."""
    m = record.metric
    parts = [f"{record.verdict} vs {record.reference} (Δ {fmt_metric(record.difference, m, signed=True)})"]
    b = record.baseline or {}
    if b.get("verdict"):
        delta = f" (Δ {fmt_metric(b['difference'], m, signed=True)})" if "difference" in b else ""
        parts.append(f"{b['verdict']} vs baseline{delta}")
    return f"{record.suite}/{record.candidate} {record.check}:{m} " + ", ".join(parts)


def collateral_failure_message(failing: Sequence[Any]) -> str:
    """The pytest failure text for failing collateral checks."""
    summary = "; ".join(collateral_line(r) for r in failing)
    return (f"ft-harness collateral check failed: {summary}\n\n"
            + "\n\n".join(describe_collateral(r) for r in failing)
            + "\n\nThe fine-tune changed behaviour outside its task beyond the tolerance of "
              "[suites.<name>.collateral.<check>] (paired against the reference candidate in this run, and "
              "against the candidate's own accepted collateral scores in the baseline).")

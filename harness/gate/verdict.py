"""The gate's verdict for each metric of one candidate against its baseline (pure: no I/O).

Verdicts:

* ``regressed``: the paired mean dropped by more than the tolerance AND the one-sided paired
  test (McNemar for 0/1 scores, paired t-test otherwise, via :func:`harness.stats.compare`)
  says the drop is significant after Holm's correction across the candidate's gated metrics;
* ``improved``: the same for a gain;
* ``inconclusive``: no significant regression, but the eval set could not have detected a
  drop of the tolerance's size (MDE > tolerance), the point estimate itself dropped beyond the
  tolerance, or the test is undefined — the ``inconclusive`` policy decides whether it fails;
* ``pass``: otherwise;
* ``no baseline``: nothing accepted yet for this candidate / metric;
* ``not comparable``: the score signature or the eval-set fingerprint differs from the
  baseline's, or no example ids are shared — flagged, not compared.

Scores are paired by example id; when the ids differ from the baseline's the comparison uses
the ids both have and says so. Deltas and tolerances are on the metric's scale, computed from
the paired per-example scores (their mean is the aggregate for accuracy, ROUGE and exact
match; for BLEU it is the mean sentence BLEU, while the record also shows corpus BLEU).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.gate.baseline import BaselineEntry, BaselineMetric
from harness.gate.config import GateConfig, MetricCheck
from harness.results import PAIRED_SCORE, EvalResult, GateRecord

PASS = "pass"
IMPROVED = "improved"
REGRESSED = "regressed"
INCONCLUSIVE = "inconclusive"
NO_BASELINE = "no baseline"
NOT_COMPARABLE = "not comparable"
VERDICTS = (PASS, IMPROVED, REGRESSED, INCONCLUSIVE, NO_BASELINE, NOT_COMPARABLE)

#: How many of the worst-changed examples a record keeps (ids, input, expected, got).
MAX_EXAMPLES = 5
_TEXT_LIMIT = 300


@dataclass(frozen=True)
class Pairing:
    """Baseline and current scores of the example ids both runs scored, in current order."""

    ids: tuple[str, ...]
    baseline: tuple[float, ...]
    current: tuple[float, ...]
    current_only: int
    baseline_only: int

    @property
    def note(self) -> str:
        """Why fewer pairs than examples were compared ("" when the id sets are equal)."""
        if not (self.current_only or self.baseline_only):
            return ""
        return (f"example ids differ from the baseline's: paired on the {len(self.ids)} ids both have "
                f"({self.current_only} only in this run, {self.baseline_only} only in the baseline)")


def pair_by_id(current_ids: Sequence[str], current_scores: Sequence[float],
               baseline_scores: Mapping[str, float]) -> Pairing:
    """Pair current scores with the baseline's by example id (the intersection, current order)."""
    ids, base, cur = [], [], []
    for example_id, score in zip(current_ids, current_scores, strict=True):
        if example_id in baseline_scores:
            ids.append(example_id)
            base.append(float(baseline_scores[example_id]))
            cur.append(float(score))
    current_only = len(set(current_ids) - set(ids))
    baseline_only = len(set(baseline_scores) - set(ids))
    return Pairing(tuple(ids), tuple(base), tuple(cur), current_only, baseline_only)


def decide(*, difference: float, allowed_drop: float, p_drop: float, p_gain: float, mde: float,
           alpha: float) -> str:
    """The verdict from the paired difference, its (adjusted) one-sided p-values and the MDE."""
    if difference < -allowed_drop and p_drop < alpha:
        return REGRESSED
    if difference > allowed_drop and p_gain < alpha:
        return IMPROVED
    if math.isnan(p_drop) or difference < -allowed_drop:
        return INCONCLUSIVE
    if not math.isnan(mde) and mde > allowed_drop:
        return INCONCLUSIVE
    return PASS


def holm_nan_aware(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values over the defined ones; undefined (NaN) p-values stay NaN."""
    from harness.stats import holm

    defined = [i for i, p in enumerate(p_values) if not math.isnan(p)]
    adjusted = [math.nan] * len(p_values)
    for index, value in zip(defined, holm([p_values[i] for i in defined]), strict=True):
        adjusted[index] = value
    return adjusted


@dataclass
class _Tested:
    check: MetricCheck
    kind: str
    pairing: Pairing
    baseline_value: float | None
    current_value: float
    allowed_drop: float
    drop: Any  # harness.stats.Comparison, alternative "less"
    p_gain: float
    gain_method: str


def _shorten(text: Any) -> str:
    text = str(text)
    return text if len(text) <= _TEXT_LIMIT else text[: _TEXT_LIMIT - 1] + "…"


def changed_examples(result: EvalResult, pairing: Pairing, *, limit: int = MAX_EXAMPLES) -> dict[str, Any]:
    """The examples that got worse (for 0/1 scores: right in the baseline, wrong now), worst first."""
    position = {example_id: i for i, example_id in enumerate(result.example_ids)}
    changes = [(cur - base, example_id, base, cur)
               for example_id, base, cur in zip(pairing.ids, pairing.baseline, pairing.current, strict=True)
               if cur != base]
    worse = sorted((c for c in changes if c[0] < 0), key=lambda c: (c[0], c[1]))
    shown = []
    for _, example_id, base, cur in worse[:limit]:
        i = position[example_id]
        shown.append({"id": example_id, "input": _shorten(result.inputs[i]),
                      "expected": _shorten(result.references[i]), "got": _shorten(result.predictions[i]),
                      "baseline_score": base, "current_score": cur})
    return {"worse": shown, "n_worse": len(worse), "n_better": sum(1 for c in changes if c[0] > 0)}


def _current_value(result: EvalResult, metric: str, scores: Sequence[float]) -> float:
    value = result.metrics.get(metric)
    if value is None:
        return sum(scores) / len(scores) if scores else math.nan
    return float(value)


def _flag(result: EvalResult, check: MetricCheck, verdict: str, reason: str, *,
          baseline: BaselineMetric | None = None, current: float = math.nan, **details: Any) -> GateRecord:
    return GateRecord(suite=result.suite, candidate=result.candidate, metric=check.metric, verdict=verdict,
                      baseline=baseline.value if baseline else None, current=current,
                      message=f"{check.metric}: {verdict}: {reason}",
                      details={"reason": reason, "tolerance": check.describe(), **details})


# Metrics whose aggregate is the mean of their per-example scores (corpus BLEU is not).
MEAN_OF_SCORES = frozenset(m for m in PAIRED_SCORE if m != "bleu")


def _demanded_floor(result: EvalResult, check: MetricCheck, stored: BaselineMetric,
                    current: float) -> GateRecord | None:
    """A baseline value edited by hand (it no longer equals the mean of its per-example scores) is
    a demanded floor: there is no paired data behind it, so the current value is held to it
    directly, within the tolerance. None when the value is the scores' own mean."""
    from harness.fmt import fmt_metric

    metric = check.metric
    if metric not in MEAN_OF_SCORES or stored.value is None or not stored.scores:
        return None
    scores_mean = sum(stored.scores.values()) / len(stored.scores)
    if math.isclose(scores_mean, stored.value, rel_tol=1e-9, abs_tol=1e-9):
        return None
    allowed = check.allowed_drop(stored.value)
    verdict = REGRESSED if current < stored.value - allowed else PASS
    reason = (f"the baseline demands {metric} {fmt_metric(stored.value, metric)} (tolerance {check.describe()}); "
              f"current {fmt_metric(current, metric)}. The value was set by hand: its per-example scores "
              f"average {fmt_metric(scores_mean, metric)}, so it is a floor, not a paired comparison")
    return _flag(result, check, verdict, reason, baseline=stored, current=current, demanded=True,
                 scores_mean=scores_mean, allowed_drop=allowed)


def _prepare(result: EvalResult, entry: BaselineEntry | None, check: MetricCheck,
             config: GateConfig) -> GateRecord | _Tested:
    from harness.stats import compare

    metric = check.metric
    try:
        scores, kind = result.paired_scores(metric)
    except KeyError as exc:
        return _flag(result, check, NOT_COMPARABLE, str(exc.args[0]), config_error=True)
    current = _current_value(result, metric, scores)
    where = f"{result.suite}/{result.candidate}"
    if entry is None:
        return _flag(result, check, NO_BASELINE, f"no baseline accepted for {where} yet", current=current)
    stored = entry.metrics.get(metric)
    if stored is None or stored.scores is None:
        return _flag(result, check, NO_BASELINE, f"the baseline of {where} has no per-example "
                     f"{PAIRED_SCORE[metric][0]!r} scores", baseline=stored, current=current)
    signature = str(result.signatures.get(metric, ""))
    if stored.signature and signature and stored.signature != signature:
        return _flag(result, check, NOT_COMPARABLE, f"score signature changed: {stored.signature} → "
                     f"{signature}", baseline=stored, current=current)
    if entry.split_fingerprint and entry.split_fingerprint != result.split_fingerprint:
        return _flag(result, check, NOT_COMPARABLE, f"eval set changed: fingerprint "
                     f"{entry.split_fingerprint[:12]} → {result.split_fingerprint[:12]}",
                     baseline=stored, current=current)
    demanded = _demanded_floor(result, check, stored, current)
    if demanded is not None:
        return demanded
    pairing = pair_by_id(result.example_ids, scores, stored.scores)
    if not pairing.ids:
        return _flag(result, check, NOT_COMPARABLE, "no example id in common with the baseline",
                     baseline=stored, current=current)
    drop = compare(pairing.baseline, pairing.current, kind=kind, alternative="less", alpha=config.alpha,
                   n_resamples=config.resamples)
    reference = stored.value if stored.value is not None else drop.mean_a
    allowed = check.allowed_drop(reference)
    p_gain, gain_method = 1.0, drop.method
    if drop.difference > allowed:  # only a gain beyond the tolerance can be an improvement
        gain = compare(pairing.baseline, pairing.current, kind=kind, alternative="greater",
                       alpha=config.alpha, n_resamples=0)
        p_gain, gain_method = gain.p_value, gain.method
    return _Tested(check, kind, pairing, stored.value, current, allowed, drop, p_gain, gain_method)


def _inconclusive_reason(drop: Any, p_drop: float, allowed: float, alpha: float, metric: str) -> str:
    from harness.fmt import fmt_metric

    if math.isnan(p_drop):
        return f"the paired test is undefined: {drop.note or 'too few pairs'}"
    if drop.difference < -allowed:
        return f"the drop exceeds the tolerance but is not significant at alpha {alpha:g}"
    return (f"MDE {fmt_metric(drop.mde, metric)} > allowed drop {fmt_metric(allowed, metric)}: this eval set "
            "cannot detect a drop of the tolerance's size")


def _finish(result: EvalResult, tested: _Tested, p_drop: float, p_gain: float, config: GateConfig) -> GateRecord:
    from harness.fmt import fmt_interval, fmt_metric, fmt_p_clause

    drop, metric = tested.drop, tested.check.metric
    verdict = decide(difference=drop.difference, allowed_drop=tested.allowed_drop, p_drop=p_drop,
                     p_gain=p_gain, mde=drop.mde, alpha=config.alpha)
    improved = verdict == IMPROVED
    p_shown, p_raw = (p_gain, tested.p_gain) if improved else (p_drop, drop.p_value)
    direction = "gain" if improved else "drop"
    message = (f"{metric}: {fmt_metric(tested.baseline_value, metric)} → {fmt_metric(tested.current_value, metric)} "
               f"(paired mean Δ {fmt_metric(drop.difference, metric, signed=True)}, "
               f"{drop.confidence:.0%} CI {fmt_interval(drop.ci, metric, signed=True)}; "
               f"{tested.gain_method if improved else drop.method}, one-sided ({direction}) "
               f"{fmt_p_clause(p_shown)} Holm-adjusted; tolerance {tested.check.describe()}, "
               f"MDE {fmt_metric(drop.mde, metric)}; n = {drop.n}): {verdict}")
    if tested.pairing.note:
        message += f" [{tested.pairing.note}]"
    reason = ""
    if verdict == INCONCLUSIVE:
        reason = _inconclusive_reason(drop, p_drop, tested.allowed_drop, config.alpha, metric)
        message += f" ({reason})"
    details = {
        "kind": tested.kind, "method": drop.method, "n_paired": drop.n,
        "baseline_mean": drop.mean_a, "current_mean": drop.mean_b, "delta": drop.difference,
        "relative_change": drop.relative_improvement, "ci": list(drop.ci), "confidence": drop.confidence,
        "p_value": p_shown, "p_value_raw": p_raw, "alternative": "greater" if improved else "less",
        "p_drop": drop.p_value, "p_drop_adjusted": p_drop, "p_gain": tested.p_gain,
        "p_gain_adjusted": p_gain, "alpha": config.alpha, "mde": drop.mde,
        "tolerance": tested.check.describe(), "allowed_drop": tested.allowed_drop,
        "reason": reason, "pairing_note": tested.pairing.note, "n_current_only": tested.pairing.current_only,
        "n_baseline_only": tested.pairing.baseline_only, "test_note": drop.note,
        **changed_examples(result, tested.pairing),
    }
    return GateRecord(suite=result.suite, candidate=result.candidate, metric=metric, verdict=verdict,
                      baseline=tested.baseline_value, current=tested.current_value, message=message,
                      details=details)


def evaluate_gate(result: EvalResult, entry: BaselineEntry | None, config: GateConfig) -> list[GateRecord]:
    """One record per gated metric of ``result`` against its baseline ``entry`` (None: no baseline)."""
    available = [m for m, (score, _) in PAIRED_SCORE.items() if score in result.per_example]
    prepared = [_prepare(result, entry, check, config) for check in config.checks_for(available)]
    tested = [p for p in prepared if isinstance(p, _Tested)]
    p_drop = iter(holm_nan_aware([t.drop.p_value for t in tested]))
    p_gain = iter(holm_nan_aware([t.p_gain for t in tested]))
    records = []
    for item in prepared:
        if isinstance(item, _Tested):
            records.append(_finish(result, item, next(p_drop), next(p_gain), config))
        else:
            records.append(item)
    return records

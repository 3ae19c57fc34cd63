"""The gate's verdict for each metric of one candidate against its baseline (pure: no I/O).

Each gated metric is a **non-inferiority test against its tolerance** ``m`` (the allowed drop),
read from the paired interval of ``Δ = current - baseline`` (:mod:`harness.stats.margin`):

* ``pass``: the interval's lower bound is above ``-m`` (non-inferiority shown), whatever the MDE;
* ``improved``: a pass whose Δ exceeds the tolerance and whose gain over the baseline is
  significant (H0 ``Δ <= 0`` rejected);
* ``regressed``: the interval lies entirely below ``-m`` (a drop beyond the tolerance shown);
* ``inconclusive``: the interval straddles ``-m`` (or is undefined); the record gives the MDE,
  the smallest tolerance this eval set could clear for an unchanged candidate with 80 % power.
  The ``inconclusive`` policy decides whether it fails;
* ``no baseline``: nothing accepted yet for this candidate / metric;
* ``not comparable``: the score signature differs from the baseline's, or too few unchanged
  examples are left to test (:mod:`harness.gate.pairing`) — flagged, not compared.

Levels. Each bound is a one-sided ``1 - alpha`` bound, so the interval shown is the two-sided
``1 - 2 alpha`` one (90 % for alpha 0.05): "lower bound above -m" is exactly "the one-sided
non-inferiority test rejects at alpha", and "upper bound below -m" exactly "the one-sided
inferiority test rejects at alpha". Across a candidate's gated metrics the p-values of each
family (inferiority, non-inferiority, superiority) are Holm-adjusted, and verdicts read the
adjusted p-values: with one gated metric that is the interval itself; with k metrics Holm's
step-down tests the j-th smallest p-value at ``alpha / (k - j + 1)``, so an interval that
clears ``-m`` at the nominal level can still be inconclusive (the reason says so).

Statistics. 0/1 scores (accuracy, exact match) use Tango's score test and interval for paired
proportions, which bounds the drop even when no example changed; other means of per-example scores
(ROUGE, semscore, graded scores) use the betting bound for bounded means on the metric's scale
(:mod:`harness.stats.bounded`), valid at every n; a corpus metric (BLEU, chrF, TER) uses a score
bound on the jackknife linearisation of its corpus score (:mod:`harness.stats.jackknife`), re-added
from each example's sufficient statistics by the metric's own
:class:`~harness.metrics.corpus_metric.CorpusMetric`, so value, interval and test describe one number. For a metric where lower is better (TER) the tests run on ``-score``: Δ and
its interval are the improvement, so a drop is always a loss.
Scores are paired by example id and content fingerprint: examples added, removed or edited
since the baseline are counted and left out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from harness.fmt import fmt_interval, fmt_metric, fmt_p, fmt_p_clause
from harness.gate.baseline import BaselineEntry, BaselineMetric
from harness.gate.config import GateConfig, MetricCheck
from harness.gate.pairing import Pairing, pair_by_id
from harness.metrics.registry import (
    MetricInfo,
    corpus_stats_table,
    graded_family,
    info,
    mean_of_scores,
    paired_in,
)
from harness.results import PAIRED_SCORE, EvalResult, GateRecord
from harness.stats import corpus_margin_test, holm, margin_test
from harness.stats.clustered import few_clusters_warning

PASS = "pass"
IMPROVED = "improved"
REGRESSED = "regressed"
INCONCLUSIVE = "inconclusive"
NO_BASELINE = "no baseline"
NOT_COMPARABLE = "not comparable"
#: a judge metric whose agreement with people on the labelled items is below the judge's min_agreement
UNTRUSTED = "untrusted judge"
VERDICTS = (PASS, IMPROVED, REGRESSED, INCONCLUSIVE, NO_BASELINE, NOT_COMPARABLE, UNTRUSTED)

#: Corpus-level metrics: tested on the corpus statistic from per-example sufficient statistics
#: kept in ``EvalResult.details[<key>]`` and ``BaselineMetric.stats`` (read from the metric registry).
CORPUS_STATS = corpus_stats_table()

#: How many of the worst-changed examples a record keeps (ids, input, expected, got).
MAX_EXAMPLES = 5
_TEXT_LIMIT = 300

__all__ = ["MAX_EXAMPLES", "VERDICTS", "Pairing", "decide", "decide_array", "evaluate_gate", "pair_by_id"]


def decide_array(*, difference: Any, allowed_drop: Any, p_noninferior: Any, p_inferior: Any,
                 p_superior: Any, alpha: float, identical: Any = False) -> np.ndarray:
    """Verdicts for arrays of (adjusted) one-sided p-values: vectorised, for simulations.

    ``identical`` (no example changed) passes by itself only at a zero tolerance, where no test can
    show non-inferiority; with a tolerance the test decides (unchanged examples bound the drop).
    """
    difference, allowed = np.asarray(difference, dtype=float), np.asarray(allowed_drop, dtype=float)
    p_ni, p_inf, p_sup = (np.asarray(p, dtype=float) for p in (p_noninferior, p_inferior, p_superior))
    identical = np.asarray(identical, dtype=bool) & (allowed == 0)
    undefined = np.isnan(p_ni) | np.isnan(p_inf)
    noninferior = p_ni < alpha
    improved = noninferior & (difference > allowed) & (p_sup < alpha)
    return np.select([identical, undefined, p_inf < alpha, improved, noninferior],
                     [PASS, INCONCLUSIVE, REGRESSED, IMPROVED, PASS], default=INCONCLUSIVE)


def decide(*, difference: float, allowed_drop: float, p_noninferior: float, p_inferior: float,
           p_superior: float, alpha: float, identical: bool = False) -> str:
    """The verdict of one metric from its (Holm-adjusted) one-sided p-values (see the module doc)."""
    return str(decide_array(difference=difference, allowed_drop=allowed_drop, p_noninferior=p_noninferior,
                            p_inferior=p_inferior, p_superior=p_superior, alpha=alpha,
                            identical=identical)[()])


def holm_nan_aware(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values over the defined ones; undefined (NaN) p-values stay NaN."""

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
    test: Any  # harness.stats.MarginTest


def _shorten(text: Any) -> str:
    text = str(text)
    return text if len(text) <= _TEXT_LIMIT else text[: _TEXT_LIMIT - 1] + "…"


def changed_examples(result: EvalResult, pairing: Pairing, *, limit: int = MAX_EXAMPLES) -> dict[str, Any]:
    """The examples that got worse, largest score drop first (ties: eval-set order, not id order)."""
    position = {example_id: i for i, example_id in enumerate(result.example_ids)}
    changes = [(cur - base, position[example_id], example_id, base, cur)
               for example_id, base, cur in zip(pairing.ids, pairing.baseline, pairing.current, strict=True)
               if cur != base]
    worse = sorted(c for c in changes if c[0] < 0)
    shown = []
    for _, i, example_id, base, cur in worse[:limit]:
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
MEAN_OF_SCORES = mean_of_scores()


def _demanded_floor(result: EvalResult, check: MetricCheck, stored: BaselineMetric,
                    current: float) -> GateRecord | None:
    """A baseline value edited by hand (it no longer equals the mean of its per-example scores) is
    a demanded floor: there is no paired data behind it, so the current value is held to it
    directly, within the tolerance. None when the value is the scores' own mean."""

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


def corpus_test(metric: str, stats_a: np.ndarray, stats_b: np.ndarray, *, margin: float, alpha: float,
                clusters: Sequence[str] | None = None) -> Any:
    """Margin tests of corpus ``metric`` (b - a, oriented so a drop is a loss): the score bound on the
    jackknife linearisation of its corpus score, re-added from both runs' per-example statistics by the
    metric itself (``clusters``, one label per example: whole clusters left out)."""

    facts = info(metric)
    corpus, sign = facts.corpus, facts.sign
    if corpus is None:
        raise KeyError(f"{metric} is not a corpus metric")
    test = corpus_margin_test(lambda counts: sign * corpus.resampled_scores(stats_a, counts),
                              lambda counts: sign * corpus.resampled_scores(stats_b, counts), len(stats_a),
                              margin=margin, alpha=alpha, clusters=clusters)
    return replace(test, mean_a=sign * test.mean_a, mean_b=sign * test.mean_b)


def score_bounds(facts: MetricInfo, baseline: Sequence[float], current: Sequence[float]) -> tuple[float, float]:
    """The range the per-example scores of a metric lie in, oriented like the gate's ``sign * score``.

    ``0 … scale`` from the registry; a graded score (declared 0–1 or −1…+1) with a negative value
    anywhere reads ``−scale … scale``. Scores outside it make the test fall back to paired t.
    """
    low = 0.0 if min(min(baseline, default=0.0), min(current, default=0.0)) >= 0 or not facts.graded \
        else -facts.scale
    return (low, facts.scale) if facts.sign > 0 else (-facts.scale, -low)


def mean_test(metric: str, baseline: Sequence[float], current: Sequence[float], *, margin: float,
              alpha: float, clusters: Sequence[str] | None = None) -> Any:
    """Margin tests of the mean of ``metric``'s per-example scores (Tango's for 0/1 scores, else the betting
    interval on the registry's scale; with ``clusters``, one label per pair, the cluster-robust test;
    oriented so a drop is a loss)."""
    facts = info(metric)
    sign = facts.sign
    test = margin_test(np.multiply(sign, baseline), np.multiply(sign, current), margin=margin, alpha=alpha,
                       clusters=clusters, bounds=score_bounds(facts, baseline, current))
    return replace(test, mean_a=sign * test.mean_a, mean_b=sign * test.mean_b)


def _corpus_test(result: EvalResult, metric: str, stored: BaselineMetric, pairing: Pairing, allowed: float,
                 config: GateConfig) -> Any:
    """The margin test of a corpus statistic on the paired examples, from both runs' sufficient statistics."""
    current = dict(zip(result.example_ids, result.details[CORPUS_STATS[metric]], strict=True))
    stats_b = np.asarray([current[i] for i in pairing.ids])
    stats_a = np.asarray([(stored.stats or {})[i] for i in pairing.ids])
    return corpus_test(metric, stats_a, stats_b, margin=allowed, alpha=config.alpha,
                       clusters=paired_clusters(result, pairing.ids))


def _prepare(result: EvalResult, entry: BaselineEntry | None, check: MetricCheck,
             config: GateConfig) -> GateRecord | _Tested:
    metric = check.metric
    try:
        scores, kind = result.paired_scores(metric)
    except KeyError as exc:
        if graded_family(metric) == "human":  # no current label for this candidate: nothing to gate, not a typo
            return _flag(result, check, NOT_COMPARABLE, f"no current human labels for {result.suite}/"
                         f"{result.candidate} ({metric}); export a sheet and import it with `ft-harness human`")
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
    by_example = bool(entry.example_fingerprints and result.example_fingerprints)
    if not by_example and entry.split_fingerprint and entry.split_fingerprint != result.split_fingerprint:
        return _flag(result, check, NOT_COMPARABLE, f"eval set changed: fingerprint "
                     f"{entry.split_fingerprint[:12]} → {result.split_fingerprint[:12]} and the baseline "
                     "has no per-example fingerprints to pair the unchanged examples by",
                     baseline=stored, current=current)
    demanded = _demanded_floor(result, check, stored, current)
    if demanded is not None:
        return demanded
    pairing = pair_by_id(result.example_ids, scores, stored.scores,
                         current_fingerprints=result.example_fingerprints if by_example else None,
                         baseline_fingerprints=entry.example_fingerprints if by_example else None)
    small = pairing.too_small(len(stored.scores))
    if small:
        return _flag(result, check, NOT_COMPARABLE, small, baseline=stored, current=current,
                     n_added=pairing.current_only, n_removed=pairing.baseline_only, n_changed=pairing.changed)
    reference = stored.value if stored.value is not None else float(np.mean(pairing.baseline))
    allowed = check.allowed_drop(reference)
    if metric in CORPUS_STATS:
        if not stored.stats or CORPUS_STATS[metric] not in result.details:
            return _flag(result, check, NOT_COMPARABLE, f"{metric} is tested at corpus level, but "
                         f"{'the baseline' if not stored.stats else 'this run'} has no per-example "
                         f"{metric} statistics (accept a new baseline)", baseline=stored, current=current)
        test, kind = _corpus_test(result, metric, stored, pairing, allowed, config), "corpus"
    else:
        test = mean_test(metric, pairing.baseline, pairing.current, margin=allowed, alpha=config.alpha,
                         clusters=paired_clusters(result, pairing.ids))
    return _Tested(check, kind, pairing, stored.value, current, allowed, test)


def paired_clusters(result: EvalResult, ids: Sequence[str]) -> list[str] | None:
    """The cluster of each paired example of a clustered suite (None: independent examples)."""
    if not result.clusters:
        return None
    return [result.clusters[i] for i in ids]


def cluster_words(test: Any) -> str:
    """``; 12 clusters, design effect 2.4`` (and the few-clusters warning) for a clustered test, else ""."""

    if not test.clusters:
        return ""
    effect = f", design effect {test.design_effect:.3g}" if math.isfinite(test.design_effect) else ""
    warning = few_clusters_warning(test.clusters)
    return f"; {test.clusters} clusters{effect}" + (f"; ⚠ {warning}" if warning else "")


def _inconclusive_reason(test: Any, adjusted_ni: float, allowed: float, alpha: float, metric: str,
                         k: int) -> str:

    if math.isnan(test.p_noninferior) or math.isnan(test.lower):
        return f"the paired interval is undefined: {test.note or 'too few pairs'}{examples_needed(test)}"
    if test.lower > -allowed:
        return (f"the {test.confidence:.0%} CI clears the allowed drop −{fmt_metric(allowed, metric)}, but not "
                f"after Holm's adjustment across {k} gated metrics (non-inferiority p = "
                f"{fmt_p(adjusted_ni)} ≥ alpha {alpha:g}){examples_needed(test)}")
    return (f"the {test.confidence:.0%} CI {fmt_interval(test.ci, metric, signed=True)} straddles the allowed "
            f"drop −{fmt_metric(allowed, metric)}: MDE {fmt_metric(test.mde, metric)} (the tolerance this eval "
            f"set needs for an unchanged candidate to pass with {test.power:.0%} power){examples_needed(test)}")


def examples_needed(test: Any) -> str:
    """``; about N paired examples would make it decisive (...)``: the planner's answer at the observed rates."""
    needed = test.n_needed
    if math.isnan(needed):
        return ""
    if math.isinf(needed):
        return "; no eval-set size makes a zero tolerance decisive"
    rate = {"Tango": f"discordance {test.spread:.3g}", "paired t": f"SD of the differences {test.spread:.3g}",
            "paired mean difference": f"cluster-robust SD {test.spread:.3g}",
            "betting": f"SD of the differences {test.spread:.3g}"}
    observed = next((words for key, words in rate.items() if test.method.startswith(key)),
                    f"SD of the linearised differences {test.spread:.3g}, scale {test.scale:.3g}")
    return (f"; about {int(needed):,} paired examples would make it decisive ({test.power:.0%} power for an "
            f"unchanged candidate at the observed {observed}; `ft-harness plan`)")


def _finish(result: EvalResult, tested: _Tested, adjusted: dict[str, float], config: GateConfig,
            k: int) -> GateRecord:

    test, metric, allowed = tested.test, tested.check.metric, tested.allowed_drop
    verdict = decide(difference=test.difference, allowed_drop=allowed, p_noninferior=adjusted["ni"],
                     p_inferior=adjusted["inf"], p_superior=adjusted["sup"], alpha=config.alpha,
                     identical=test.identical)
    shown, raw, alternative = {
        REGRESSED: (adjusted["inf"], test.p_inferior, "less"),
        IMPROVED: (adjusted["sup"], test.p_superior, "greater"),
    }.get(verdict, (adjusted["ni"], test.p_noninferior, "non-inferior"))
    question = {"less": f"drop beyond −{fmt_metric(allowed, metric)}", "greater": "gain",
                "non-inferior": f"no drop beyond −{fmt_metric(allowed, metric)}"}[alternative]
    message = (f"{metric}: {fmt_metric(tested.baseline_value, metric)} → {fmt_metric(tested.current_value, metric)} "
               f"(paired Δ {fmt_metric(test.difference, metric, signed=True)}, "
               f"{test.confidence:.0%} CI {fmt_interval(test.ci, metric, signed=True)}; {test.method}, "
               f"one-sided ({question}) {fmt_p_clause(shown)} Holm-adjusted; tolerance "
               f"{tested.check.describe()}, MDE {fmt_metric(test.mde, metric)}; n = {test.n}{cluster_words(test)}): "
               f"{verdict}")
    if tested.pairing.note:
        message += f" [{tested.pairing.note}]"
    reason = ""
    if verdict == INCONCLUSIVE:
        reason = _inconclusive_reason(test, adjusted["ni"], allowed, config.alpha, metric, k)
        message += f" ({reason})"
    pairing = tested.pairing
    details = {
        "kind": tested.kind, "method": test.method, "n_paired": test.n,
        "baseline_mean": test.mean_a, "current_mean": test.mean_b, "delta": test.difference,
        "relative_change": test.difference / abs(test.mean_a) if test.mean_a else None,
        "ci": list(test.ci), "confidence": test.confidence,
        "p_value": shown, "p_value_raw": raw, "alternative": alternative,
        "p_drop": test.p_inferior, "p_drop_adjusted": adjusted["inf"],
        "p_noninferior": test.p_noninferior, "p_noninferior_adjusted": adjusted["ni"],
        "p_gain": test.p_superior, "p_gain_adjusted": adjusted["sup"], "alpha": config.alpha,
        "n_gated": k, "n_clusters": test.clusters, "design_effect": test.design_effect,
        "cluster_warning": few_clusters_warning(test.clusters) if test.clusters else "", "mde": test.mde,
        "n_needed": test.n_needed, "spread": test.spread, "scale": test.scale,
        "width_ratio": test.width_ratio,
        "tolerance": tested.check.describe(), "allowed_drop": allowed,
        "reason": reason, "pairing_note": pairing.note, "n_current_only": pairing.current_only,
        "n_baseline_only": pairing.baseline_only, "n_added": pairing.current_only,
        "n_removed": pairing.baseline_only, "n_changed": pairing.changed, "test_note": test.note,
        **changed_examples(result, pairing),
    }
    return GateRecord(suite=result.suite, candidate=result.candidate, metric=metric, verdict=verdict,
                      baseline=tested.baseline_value, current=tested.current_value, message=message,
                      details=details)


def evaluate_gate(result: EvalResult, entry: BaselineEntry | None, config: GateConfig) -> list[GateRecord]:
    """One record per gated metric of ``result`` against its baseline ``entry`` (None: no baseline)."""
    available = [m for m in paired_in(result.metrics) if PAIRED_SCORE[m][0] in result.per_example]
    prepared = [_prepare(result, entry, check, config) for check in config.checks_for(available)]
    tested = [p for p in prepared if isinstance(p, _Tested)]
    families = {name: iter(holm_nan_aware([getattr(t.test, field) for t in tested]))
                for name, field in (("ni", "p_noninferior"), ("inf", "p_inferior"), ("sup", "p_superior"))}
    records = []
    for item in prepared:
        if isinstance(item, _Tested):
            adjusted = {name: next(values) for name, values in families.items()}
            records.append(_finish(result, item, adjusted, config, len(tested)))
        else:
            records.append(item)
    return records

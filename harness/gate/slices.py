"""Per-slice gate verdicts against the baseline (pure): the overall test, repeated on every slice.

For each gated metric and each slice (``EvalResult.slices``, else the baseline's membership) the
slice's unchanged examples are paired with the baseline by id and content fingerprint and tested
exactly like the whole eval set (:mod:`harness.gate.verdict`): Tango's score test for 0/1 scores,
the betting bound on the metric's scale for other means of per-example scores, the score bound on the
jackknife-linearised corpus score for corpus metrics, against the metric's own
allowed drop. The one-sided p-values of all slices x metrics of a candidate form one family,
adjusted with Holm (family-wise error, the default) or Benjamini-Hochberg (``slice_correction =
"bh"``, false discovery rate; ``scipy.stats.false_discovery_control``) before the verdict is read.

A slice with fewer paired examples than ``min_slice_size`` is not tested: it reads
``inconclusive (n = 7 < 20)`` with its MDE. A slice's **MDE** is the smallest true drop from the
baseline that this slice would show as ``regressed`` with 80 % power at the corrected level
(Bonferroni's ``alpha / k`` over the k slice tests, which Holm never undercuts): the allowed drop
plus the one-sided detectable difference of the slice's own test at that level (:func:`slice_mde`):
Tango's for 0/1 scores, the betting bound's for bounded scores, the cluster-robust or corpus score
bound's where those test the slice — positive even when no example of the slice changed: a few
unchanged examples cannot rule out a large break rate. A candidate whose overall Δ is positive while a slice
regresses has a **hidden regression**; with ``fail_on_slice_regression = true`` any slice
regression fails the gate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from harness.fmt import fmt_interval, fmt_metric, fmt_p_clause
from harness.gate.baseline import BaselineEntry
from harness.gate.config import GateConfig
from harness.gate.pairing import pair_by_id
from harness.gate.verdict import (
    CORPUS_STATS,
    INCONCLUSIVE,
    REGRESSED,
    corpus_test,
    decide_array,
    mean_test,
    paired_clusters,
)
from harness.results import EvalResult, GateRecord
from harness.stats import is_binary, mde
from harness.stats.margin import BETTING_METHOD
from harness.stats.paired_binary import TANGO_METHOD, tango_regression_mde

POWER = 0.8


def adjust_rows(p_values: Any, method: str = "holm") -> np.ndarray:
    """Adjusted p-values along the last axis (one family per row): ``holm`` or ``bh``; NaN stays NaN."""
    p = np.asarray(p_values, dtype=float)
    if p.shape[-1] == 0:
        return p.copy()
    if np.isnan(p).any():
        flat = p.reshape(-1, p.shape[-1])
        out = np.full(flat.shape, np.nan)
        for i, row in enumerate(flat):
            keep = ~np.isnan(row)
            if keep.any():
                out[i, keep] = adjust_rows(row[keep], method)
        return out.reshape(p.shape)
    if method == "bh":
        from scipy.stats import false_discovery_control

        return np.asarray(false_discovery_control(p, axis=-1, method="bh"), dtype=float)
    if method != "holm":
        raise ValueError(f"unknown correction {method!r} (expected 'holm' or 'bh')")
    m = p.shape[-1]
    order = np.argsort(p, axis=-1, kind="stable")
    ranked = np.take_along_axis(p, order, axis=-1)
    scaled = np.minimum(1.0, (m - np.arange(m)) * ranked)
    adjusted = np.empty_like(p)
    np.put_along_axis(adjusted, order, np.maximum.accumulate(scaled, axis=-1), axis=-1)
    return adjusted


def family_verdicts(*, difference: Any, allowed_drop: Any, p_noninferior: Any, p_inferior: Any,
                    p_superior: Any, alpha: float, method: str = "holm") -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Verdicts of a family of slice tests (last axis; rows are runs) after adjusting each p-value family."""
    adjusted = {"ni": adjust_rows(p_noninferior, method), "inf": adjust_rows(p_inferior, method),
                "sup": adjust_rows(p_superior, method)}
    verdicts = decide_array(difference=difference, allowed_drop=allowed_drop, p_noninferior=adjusted["ni"],
                            p_inferior=adjusted["inf"], p_superior=adjusted["sup"], alpha=alpha)
    return verdicts, adjusted


def detectable_drop(sd: float, n: int, *, allowed: float, alpha: float, k: int, power: float = POWER,
                    discordance: float | None = None) -> float:
    """The slice MDE: allowed drop + the one-sided detectable difference at ``alpha / k``.

    0/1 scores (``discordance`` given: the share of changed examples): the drop Tango's inferiority
    test shows (:func:`~harness.stats.paired_binary.tango_regression_mde`), positive when nothing
    changed; other scores: the paired t test's at ``sd``.
    """

    if discordance is not None and n >= 1:
        return allowed + tango_regression_mde(n, discordance, allowed, alpha=alpha / max(k, 1), power=power)
    if n < 2 or not math.isfinite(sd):
        return math.nan
    return allowed + mde(n, sd, alpha=alpha / max(k, 1), power=power, alternative="greater")


@dataclass
class SliceVerdict:
    """One slice x metric of one candidate against its baseline."""

    family: str
    slice: str
    metric: str
    n: int
    verdict: str
    baseline: float | None
    current: float | None
    delta: float
    ci: tuple[float, float]
    confidence: float
    p_value: float          # adjusted p-value of the question the verdict answers
    p_value_raw: float
    p_drop_adjusted: float  # adjusted p of "drop beyond the allowed drop" (what a regression reads)
    mde: float
    allowed_drop: float
    method: str
    reason: str = ""
    tested: bool = True
    p_raw: dict[str, float] = field(default_factory=dict)  # one-sided p-values: ni, inf, sup
    n_needed: float = math.nan  # paired examples that would make an inconclusive slice decisive
    _sd: float = field(default=math.nan, repr=False)
    _discordance: float | None = field(default=None, repr=False)
    _test: Any = field(default=None, repr=False)
    _retest: Any = field(default=None, repr=False)  # the slice's test at another alpha (for the MDE at alpha / k)

    @property
    def label(self) -> str:
        """``family: slice`` as tables show it."""
        return f"{self.family}: {self.slice}"

    def describe(self, correction: str = "holm", k: int = 0) -> str:
        """``label: negative: accuracy 0.900 → 0.600 (Δ −0.300, 90% CI [...], p = ... Holm-adjusted ...; n = 40)``."""

        if not self.tested:
            return f"{self.label}: {self.metric}: {self.reason}"
        name = "Holm" if correction == "holm" else "Benjamini-Hochberg"
        return (f"{self.label}: {self.metric} {fmt_metric(self.baseline, self.metric)} → "
                f"{fmt_metric(self.current, self.metric)} (Δ {fmt_metric(self.delta, self.metric, signed=True)}, "
                f"{self.confidence:.0%} CI {fmt_interval(self.ci, self.metric, signed=True)}, "
                f"{fmt_p_clause(self.p_value)} {name}-adjusted across {k} slice tests; n = {self.n}): {self.verdict}"
                f"{self.needed_words() if self.verdict == INCONCLUSIVE else ''}")

    def needed_words(self) -> str:
        """``; about N paired examples would make it decisive`` (empty when unknown)."""
        if math.isnan(self.n_needed):
            return ""
        if math.isinf(self.n_needed):
            return "; no slice size makes a zero tolerance decisive"
        return f"; about {int(self.n_needed):,} paired examples would make it decisive"

    def as_dict(self) -> dict[str, Any]:
        data = {key: value for key, value in asdict(replace(self, _test=None, _retest=None)).items()
                if not key.startswith("_")}
        data["ci"] = list(self.ci)
        data["label"] = self.label
        return data


def _sd(values: Sequence[float]) -> float:
    return float(np.std(np.asarray(values, dtype=float), ddof=1)) if len(values) > 1 else math.nan


def _slice_test(result: EvalResult, entry: BaselineEntry, metric: str, ids: list[str], allowed: float,
                config: GateConfig, position: dict[str, int]) -> tuple[Any, Any, float, float | None, Any] | None:
    """(pairing, test, SD of the differences, discordance of 0/1 scores, the test re-run at another alpha)."""
    try:
        scores, _ = result.paired_scores(metric)
    except KeyError:
        return None
    stored = entry.metrics.get(metric)
    if stored is None or not stored.scores:
        return None
    inside = [i for i in ids if i in position]
    by_example = bool(entry.example_fingerprints and result.example_fingerprints)
    fingerprints = [result.example_fingerprints[position[i]] for i in inside] if by_example else None
    pairing = pair_by_id(inside, [scores[position[i]] for i in inside], stored.scores,
                         current_fingerprints=fingerprints,
                         baseline_fingerprints=entry.example_fingerprints if by_example else None)
    n = len(pairing.ids)
    clusters = paired_clusters(result, pairing.ids)
    key = CORPUS_STATS.get(metric)
    if key and stored.stats and key in result.details and n >= 2:
        rows = result.details[key]
        stats_b = np.asarray([rows[position[i]] for i in pairing.ids])
        stats_a = np.asarray([stored.stats[i] for i in pairing.ids])

        def corpus_at(level: float) -> Any:
            return corpus_test(metric, stats_a, stats_b, margin=allowed, alpha=level, clusters=clusters)

        test = corpus_at(config.alpha)
        return pairing, test, test.spread, None, corpus_at
    binary = n >= 1 and is_binary(np.asarray(pairing.baseline)) and is_binary(np.asarray(pairing.current))
    discordance = float(np.mean(np.not_equal(pairing.baseline, pairing.current))) if binary else None
    if n < 1 or (n < 2 and not binary):
        return pairing, None, math.nan, None, None

    def mean_at(level: float) -> Any:
        return mean_test(metric, pairing.baseline, pairing.current, margin=allowed, alpha=level, clusters=clusters)

    test = mean_at(config.alpha)
    if clusters is not None and test.clusters >= 2 and not test.identical:
        return pairing, test, test.spread, None, mean_at  # the cluster-robust test: its own MDE at alpha / k
    return pairing, test, _sd(np.subtract(pairing.current, pairing.baseline).tolist()), discordance, mean_at


def slice_mde(test: Any, retest: Any, n: int, *, allowed: float, alpha: float, k: int, sd: float = math.nan,
              discordance: float | None = None) -> float:
    """The slice MDE by the slice's own test at ``alpha / k``: the smallest true drop it shows as regressed with 80 %.

    Tango's test (0/1 scores): :func:`detectable_drop`; the betting bound: the allowed drop + the distance from
    Δ̂ to its upper bound at ``alpha / k`` + ``z_power`` SE; the paired t, cluster-robust and corpus tests: the
    allowed drop + their own MDE at ``alpha / k`` (t's exact noncentral-t one, CR1's on G − 1 df, the corpus
    score bound's width + ``z_power`` SE).
    """
    from scipy import special

    if test is None or retest is None:
        return detectable_drop(sd, n, allowed=allowed, alpha=alpha, k=k, discordance=discordance)
    if test.method == TANGO_METHOD and discordance is not None:
        return detectable_drop(sd, n, allowed=allowed, alpha=alpha, k=k, discordance=discordance)
    level = alpha / max(k, 1)
    strict = retest(level)
    if strict.method == BETTING_METHOD:
        return allowed + (strict.upper - strict.difference) + float(special.ndtri(POWER)) * strict.spread / math.sqrt(n)
    return allowed + strict.mde


def slice_verdicts(result: EvalResult, entry: BaselineEntry | None, config: GateConfig,
                   records: Sequence[GateRecord]) -> list[SliceVerdict]:
    """Every slice x gated metric of ``result`` against ``entry`` (empty without slices or baseline)."""
    members = result.slices or (entry.slices if entry is not None else None) or {}
    if entry is None or not members:
        return []
    rows: list[SliceVerdict] = []
    gated = [r for r in records if "allowed_drop" in r.details]
    position = {example_id: i for i, example_id in enumerate(result.example_ids)}  # once, not per slice
    for record in gated:
        metric, allowed = record.metric, float(record.details["allowed_drop"])
        for family, groups in members.items():
            for name, ids in groups.items():
                tested = _slice_test(result, entry, metric, list(ids), allowed, config, position)
                if tested is None:
                    continue
                pairing, test, sd, discordance, retest = tested
                nan = math.nan
                rows.append(SliceVerdict(
                    family=family, slice=name, metric=metric, n=len(pairing.ids), verdict=INCONCLUSIVE,
                    baseline=test.mean_a if test else None, current=test.mean_b if test else None,
                    delta=test.difference if test else nan, ci=test.ci if test else (nan, nan),
                    confidence=1 - 2 * config.alpha, p_value=nan,
                    p_value_raw=test.p_inferior if test else nan, p_drop_adjusted=nan, mde=nan,
                    allowed_drop=allowed, method=test.method if test else "", _sd=sd, _discordance=discordance,
                    p_raw={"ni": test.p_noninferior, "inf": test.p_inferior, "sup": test.p_superior} if test else {},
                    n_needed=test.n_needed if test else nan, _test=test, _retest=retest))
    k = len(rows)
    for row in rows:
        row.mde = slice_mde(row._test, row._retest, row.n, allowed=row.allowed_drop, alpha=config.alpha, k=k,
                            sd=row._sd, discordance=row._discordance)
    _decide(rows, config)
    return rows


def _decide(rows: list[SliceVerdict], config: GateConfig) -> None:

    big = [r for r in rows if r.n >= config.min_slice_size and r.method]
    for row in rows:
        if row not in big:
            row.tested = False
            row.reason = (f"inconclusive (n = {row.n} < {config.min_slice_size}), MDE "
                          f"{fmt_metric(row.mde, row.metric)}{row.needed_words()}")
    if not big:
        return
    raw = {key: [r.p_raw[key] for r in big] for key in ("ni", "inf", "sup")}
    verdicts, adjusted = family_verdicts(
        difference=[r.delta for r in big], allowed_drop=[r.allowed_drop for r in big],
        p_noninferior=raw["ni"], p_inferior=raw["inf"], p_superior=raw["sup"], alpha=config.alpha,
        method=config.slice_correction)
    for i, row in enumerate(big):
        row.verdict = str(verdicts[i])
        row.p_drop_adjusted = float(adjusted["inf"][i])
        which = {"regressed": "inf", "improved": "sup"}.get(row.verdict, "ni")
        row.p_value = float(adjusted[which][i])
        row.p_value_raw = float(raw[which][i])


def attach_slice_verdicts(records: Sequence[GateRecord], result: EvalResult, entry: BaselineEntry | None,
                          config: GateConfig) -> list[SliceVerdict]:
    """Put each metric's slice verdicts, its slice regressions and the hidden-regression flag on its record."""
    rows = slice_verdicts(result, entry, config, records)
    if not rows:
        return rows
    k = sum(1 for r in rows if r.tested)
    for record in records:
        mine = [r for r in rows if r.metric == record.metric]
        if not mine:
            continue
        regressions = [r for r in mine if r.tested and r.verdict == REGRESSED]
        overall = record.details.get("delta")
        hidden = bool(regressions) and isinstance(overall, (int, float)) and overall > 0
        record.details.update({
            "slices": [r.as_dict() for r in mine], "slice_correction": config.slice_correction,
            "min_slice_size": config.min_slice_size, "n_slice_tests": k,
            "slice_regressions": [r.describe(config.slice_correction, k) for r in regressions],
            "slice_regression_labels": [r.label for r in regressions],
            "hidden_regression": hidden, "fail_on_slice_regression": config.fail_on_slice_regression,
        })
        if regressions:
            what = "hidden regression" if hidden else "slice regression"
            record.message += f" [{what}: " + "; ".join(r.label for r in regressions) + "]"
    return rows

"""Margin (non-inferiority) tests of a paired difference ``Δ = b - a`` against a tolerance ``m``.

The gate asks two one-sided questions about the true mean difference, each at level ``alpha``:

* non-inferiority: H0 ``Δ <= -m`` against H1 ``Δ > -m`` (``p_noninferior``): rejected → *pass*;
* inferiority:     H0 ``Δ >= -m`` against H1 ``Δ < -m`` (``p_inferior``): rejected → *regressed*;

plus superiority, H0 ``Δ <= 0`` against ``Δ > 0`` (``p_superior``), for "improved".

Both margin tests are read off one interval: the two-sided ``1 - 2 alpha`` interval
``[lower, upper]`` (90 % for alpha 0.05). ``lower > -m`` exactly when ``p_noninferior < alpha``,
and ``upper < -m`` exactly when ``p_inferior < alpha`` — each bound is the one-sided
``1 - alpha`` confidence bound. So the interval straddles ``-m`` exactly when neither test
rejects: the only inconclusive case.

Four ways to get the interval and the p-values, each the dual of the other:

* 0/1 scores (accuracy, exact match): Tango's (1998) score test and interval for the difference
  of paired proportions (:mod:`harness.stats.paired_binary`). The Wald / paired-t interval it
  replaces passed up to half the runs at a true drop equal to the tolerance when a candidate only
  breaks a few examples, and treated "no discordant pair" as a known difference of 0;
* other means of per-example scores on a known scale (ROUGE 0–100, semscore and graded scores
  0–1, passed as ``bounds``): the betting interval of Waudby-Smith & Ramdas (2024) for bounded
  means (:mod:`harness.stats.bounded`), valid at every n. The paired t interval it replaces
  passed up to 37 % of runs at a true drop equal to the tolerance when most examples were
  unchanged and a few lost 20–40 points;
* means of scores of unknown range (no ``bounds``): the paired t interval of the mean difference
  (``scipy.stats.ttest_1samp(d, -m)``), vectorised over rows so a simulation of many runs costs one call;
* a corpus statistic (corpus BLEU, chrF, TER): a score bound on its jackknife linearisation
  (:mod:`harness.stats.jackknife`), Tango's construction carried over to the per-example
  pseudo-values. The paired bootstrap of the statistic (Koehn 2004) it replaces passed up to 60 %
  of runs at a true drop equal to the tolerance when a candidate broke a few sentences.

The MDE is the smallest margin that a candidate with no true change clears with ``power``
(default 80 %): for Tango's test at the observed discordance (:func:`~harness.stats.paired_binary.tango_mde`;
``z² / (n + z²)`` when no example changed), for the betting interval its observed distance below the mean plus ``z_power`` standard errors,
for the t interval the paired t-test's MDE at the observed SD
(:func:`harness.stats.power.mde`, one-sided), for a corpus statistic the score bound's distance
below the estimate plus ``z_power`` jackknife standard errors. Equivalently a true drop of ``m + MDE`` reads *regressed* with
that power.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from harness.stats._inputs import check_probability, is_binary, paired
from harness.stats.bounded import betting_margin_arrays, eb_half_width
from harness.stats.clustered import CLUSTER_METHOD, clustered_margin_arrays, clustered_mde
from harness.stats.jackknife import linearised_difference, score_bound_arrays, score_bound_mde
from harness.stats.paired_binary import (
    TANGO_METHOD,
    discordant_counts,
    tango_margin_arrays,
    tango_mde,
)
from harness.stats.planning import (
    examples_for_binary,
    examples_for_bounded,
    examples_for_corpus,
    examples_for_mean,
)
from harness.stats.power import mde as t_test_mde

T_METHOD = "paired t interval (non-inferiority)"
BETTING_METHOD = "betting interval for bounded scores (non-inferiority)"
CORPUS_METHOD = "score bound on the jackknife-linearised corpus statistic (non-inferiority)"


@dataclass(frozen=True)
class MarginTest:
    """Both one-sided margin tests of ``Δ = b - a`` and the ``1 - 2 alpha`` interval they are read from."""

    method: str
    n: int
    mean_a: float
    mean_b: float
    difference: float
    lower: float
    upper: float
    confidence: float
    margin: float
    alpha: float
    p_noninferior: float
    p_inferior: float
    p_superior: float
    mde: float
    power: float
    identical: bool = False
    note: str = ""
    #: the rate the MDE and the planner read: discordance (0/1), SD of the differences (t, betting), or
    #: the SD of the per-example linearised differences (corpus)
    spread: float = math.nan
    #: paired examples an unchanged candidate at this spread needs to clear the margin with ``power``
    n_needed: float = math.nan
    #: clustered suites: the number of clusters and the design effect (clustered / iid variance)
    clusters: int = 0
    design_effect: float = math.nan
    #: corpus statistics: the largest change one example (cluster) is allowed to make (the bound's ``w``);
    #: bounded scores: the width of their range
    scale: float = math.nan
    #: bounded scores: the betting bound's width over the empirical-Bernstein plug-in width (the planner scales by it)
    width_ratio: float = math.nan

    @property
    def ci(self) -> tuple[float, float]:
        """(lower, upper): the two-sided ``1 - 2 alpha`` interval of the difference."""
        return (self.lower, self.upper)

    def as_dict(self) -> dict[str, Any]:
        """All fields, JSON-friendly."""
        data = asdict(self)
        data["ci"] = [self.lower, self.upper]
        return data


def t_margin_arrays(differences: np.ndarray, margin: float, alpha: float) -> dict[str, np.ndarray]:
    """Vectorised paired t margin tests over the last axis of ``differences`` (one row per run).

    Returns arrays ``mean``, ``se``, ``lower``, ``upper`` (the ``1 - 2 alpha`` interval),
    ``p_noninferior``, ``p_inferior``, ``p_superior``. Rows with zero spread get exact
    p-values (0 or 1: the difference is known); rows of fewer than 2 values get NaN.
    """
    from scipy import special

    d = np.asarray(differences, dtype=float)
    n = d.shape[-1]
    mean = d.mean(axis=-1)
    if n < 2:
        nan = np.full(mean.shape, np.nan)
        return {"mean": mean, "se": nan, "lower": nan, "upper": nan, "p_noninferior": nan,
                "p_inferior": nan, "p_superior": nan}
    se = d.std(axis=-1, ddof=1) / math.sqrt(n)
    df = n - 1
    critical = float(special.stdtrit(df, 1.0 - alpha))
    with np.errstate(divide="ignore", invalid="ignore"):
        t_margin = (mean + margin) / se
        t_zero = mean / se
        p_ni = special.stdtr(df, -t_margin)
        p_inf = special.stdtr(df, t_margin)
        p_sup = special.stdtr(df, -t_zero)
    flat = se == 0
    # no spread: every difference equals the mean, so each hypothesis is known to hold or not
    p_ni = np.where(flat, np.where(mean + margin > 0, 0.0, 1.0), p_ni)
    p_inf = np.where(flat, np.where(mean + margin < 0, 0.0, 1.0), p_inf)
    p_sup = np.where(flat, np.where(mean > 0, 0.0, 1.0), p_sup)
    return {"mean": mean, "se": se, "lower": mean - critical * se, "upper": mean + critical * se,
            "p_noninferior": p_ni, "p_inferior": p_inf, "p_superior": p_sup}


def margin_arrays(baseline: Any, current: Any, margin: float, alpha: float,
                  bounds: tuple[float, float] | None = None) -> dict[str, np.ndarray]:
    """The gate's margin tests over the last axis of paired score arrays (rows are runs), as ``margin_test`` picks them.

    0/1 scores on both sides: Tango's score test; scores in ``bounds``: the betting interval;
    anything else: the paired t test.
    """
    a, b = np.asarray(baseline, dtype=float), np.asarray(current, dtype=float)
    if is_binary(a) and is_binary(b):
        fixes, breaks = discordant_counts(a, b)
        return tango_margin_arrays(fixes, breaks, a.shape[-1], margin, alpha)
    if bounds is not None:
        return betting_margin_arrays(b - a, margin, alpha, float(bounds[1] - bounds[0]))
    return t_margin_arrays(b - a, margin, alpha)


def _check_margin_inputs(alpha: float, power: float, margin: float) -> None:
    check_probability(alpha, "alpha")
    check_probability(power, "power")
    if not (math.isfinite(margin) and margin >= 0):
        raise ValueError(f"margin must be a finite number >= 0, got {margin!r}")
    if alpha >= 0.5:
        raise ValueError(f"alpha must be below 0.5 for a 1 - 2 alpha interval, got {alpha}")


def margin_test(a: Any, b: Any, *, margin: float, alpha: float = 0.05, power: float = 0.8,
                clusters: Any = None, bounds: tuple[float, float] | None = None) -> MarginTest:
    """Margin tests of ``b - a`` against the tolerance ``margin`` (>= 0).

    Tango's for 0/1 scores; the betting interval for scores known to lie in ``bounds`` (lo, hi);
    the paired t interval for scores of unknown range. ``clusters`` (one label per pair): the
    cluster-robust test (:mod:`harness.stats.clustered`) instead of any of them.
    """
    first, second = paired(a, b)
    _check_margin_inputs(alpha, power, margin)
    if clusters is not None:
        return _clustered_margin_test(first, second, clusters, margin=margin, alpha=alpha, power=power)
    d = second - first
    n = int(d.shape[0])
    if is_binary(first) and is_binary(second):
        return _binary_margin_test(first, second, margin=margin, alpha=alpha, power=power)
    if bounds is not None and n >= 2:
        low, high = bounds
        if not (math.isfinite(low) and math.isfinite(high) and high > low):
            raise ValueError(f"bounds must be finite with lo < hi, got {bounds!r}")
        inside = bool(np.all((first >= low) & (first <= high) & (second >= low) & (second <= high)))
        if inside:
            return _bounded_margin_test(first, second, margin=margin, alpha=alpha, power=power,
                                        radius=float(high - low))
    return _t_margin_test(first, second, margin=margin, alpha=alpha, power=power)


def _t_margin_test(first: np.ndarray, second: np.ndarray, *, margin: float, alpha: float,
                   power: float) -> MarginTest:
    """The paired t margin tests (scores of unknown range)."""
    d = second - first
    n = int(d.shape[0])
    identical = bool(np.all(d == 0))
    row = {k: float(np.ravel(v)[0]) for k, v in t_margin_arrays(d[None, :], margin, alpha).items()}
    sd = float(np.std(d, ddof=1)) if n > 1 else math.nan
    detectable = math.nan if n < 2 else (0.0 if sd == 0 else
                                         t_test_mde(n, sd, alpha=alpha, power=power, alternative="greater"))
    note = ""
    if n < 2:
        note = "a paired interval needs at least 2 pairs"
    elif identical:
        note = "identical scores on every paired example"
    return MarginTest(method=T_METHOD, n=n, mean_a=float(first.mean()), mean_b=float(second.mean()),
                      difference=row["mean"], lower=row["lower"], upper=row["upper"],
                      confidence=1.0 - 2.0 * alpha, margin=float(margin), alpha=alpha,
                      p_noninferior=row["p_noninferior"], p_inferior=row["p_inferior"],
                      p_superior=row["p_superior"], mde=detectable, power=power, identical=identical,
                      note=note, spread=sd, n_needed=examples_for_mean(sd, margin, alpha=alpha, power=power))


def _bounded_margin_test(first: np.ndarray, second: np.ndarray, *, margin: float, alpha: float, power: float,
                         radius: float) -> MarginTest:
    """The betting margin tests of differences in ``[-radius, radius]`` (Waudby-Smith & Ramdas 2024).

    MDE: the bound's observed distance below the mean plus ``z_power`` standard errors (the margin
    an unchanged candidate with this spread clears with ``power``); ``n_needed`` scales the
    empirical-Bernstein plug-in width to the observed one.
    """
    from scipy import special

    d = second - first
    n = int(d.shape[0])
    row = {k: float(np.ravel(v)[0]) for k, v in betting_margin_arrays(d[None, :], margin, alpha, radius).items()}
    sd = float(np.std(d, ddof=1))
    below = row["mean"] - row["lower"]
    z_power = float(special.ndtri(power))
    detectable = below + z_power * sd / math.sqrt(n)
    ratio = below / eb_half_width(n, sd, radius, alpha)
    identical = bool(np.all(d == 0))
    return MarginTest(method=BETTING_METHOD, n=n, mean_a=float(first.mean()), mean_b=float(second.mean()),
                      difference=row["mean"], lower=row["lower"], upper=row["upper"],
                      confidence=1.0 - 2.0 * alpha, margin=float(margin), alpha=alpha,
                      p_noninferior=row["p_noninferior"], p_inferior=row["p_inferior"],
                      p_superior=row["p_superior"], mde=detectable, power=power, identical=identical,
                      note=(f"identical scores on every paired example; scores in a range of {radius:g}" if identical
                            else f"scores in a range of {radius:g}"),
                      spread=sd, scale=radius, width_ratio=ratio,
                      n_needed=examples_for_bounded(sd, radius, margin, alpha=alpha, power=power, ratio=ratio))


def _binary_margin_test(first: np.ndarray, second: np.ndarray, *, margin: float, alpha: float,
                        power: float) -> MarginTest:
    """Tango's score margin tests of paired 0/1 scores; no discordant pair still gives a real interval."""
    n = int(first.shape[0])
    fixes, breaks = (int(x) for x in discordant_counts(first, second))
    row = {k: float(np.ravel(v)[0]) for k, v in tango_margin_arrays(fixes, breaks, n, margin, alpha).items()}
    discordance = (fixes + breaks) / n
    identical = fixes + breaks == 0
    note = (f"no example changed: {n} unchanged pairs bound the drop at {-row['lower']:.4g}" if identical else
            f"{fixes} fixed, {breaks} broken of {n}")
    return MarginTest(method=TANGO_METHOD, n=n, mean_a=float(first.mean()), mean_b=float(second.mean()),
                      difference=row["mean"], lower=row["lower"], upper=row["upper"],
                      confidence=1.0 - 2.0 * alpha, margin=float(margin), alpha=alpha,
                      p_noninferior=row["p_noninferior"], p_inferior=row["p_inferior"],
                      p_superior=row["p_superior"], mde=tango_mde(n, discordance, alpha=alpha, power=power),
                      power=power, identical=identical, note=note, spread=discordance,
                      n_needed=examples_for_binary(discordance, margin, alpha=alpha, power=power))


def bootstrap_margin_arrays(resampled: np.ndarray, margin: float, alpha: float) -> dict[str, float]:
    """Margin tests from bootstrap replicates of a difference: bounds and p-values that agree exactly.

    ``lower`` is the ``inverted_cdf`` ``alpha`` quantile, so ``lower > -m`` iff the share of
    replicates ``<= -m`` (``p_noninferior``) is below alpha; ``upper`` is the largest ``x`` with a
    share of replicates ``>= x`` of at least alpha, so ``upper < -m`` iff ``p_inferior`` (the
    share ``>= -m``) is below alpha.
    """
    values = np.asarray(resampled, dtype=float)
    lower = float(np.quantile(values, alpha, method="inverted_cdf"))
    upper = float(-np.quantile(-values, alpha, method="inverted_cdf"))
    return {"lower": lower, "upper": upper,
            "p_noninferior": float(np.mean(values <= -margin)),
            "p_inferior": float(np.mean(values >= -margin)),
            "p_superior": float(np.mean(values <= 0.0)), "sd": float(np.std(values, ddof=1))}


def corpus_margin_test(score_a: Callable[[np.ndarray], np.ndarray], score_b: Callable[[np.ndarray], np.ndarray],
                       n: int, *, margin: float, alpha: float = 0.05, power: float = 0.8,
                       clusters: Any = None) -> MarginTest:
    """Margin tests of a corpus-level difference (corpus BLEU b - a): the score bound on its jackknife linearisation.

    ``score_a`` / ``score_b`` map a (rows, n) matrix of example counts to one corpus score per row
    (``CorpusMetric.resampled_scores``); the test scores each leave-one-out row
    (:mod:`harness.stats.jackknife`). ``clusters`` (one label per example): whole clusters are left
    out, and the bound reads one pseudo-value per cluster. The paired bootstrap it replaces passed
    up to 60 % of runs at a true drop equal to the tolerance (README, "Statistics").
    """
    check_probability(alpha, "alpha")
    check_probability(power, "power")
    parts = linearised_difference(score_a, score_b, n, clusters) if n >= 2 else None
    if parts is None or parts["groups"] < 2:
        full = np.ones((1, n), dtype=np.int64)
        mean_a, mean_b = float(score_a(full)[0]), float(score_b(full)[0])
        nan = math.nan
        return MarginTest(CORPUS_METHOD, n, mean_a, mean_b, mean_b - mean_a, nan, nan, 1 - 2 * alpha, margin,
                          alpha, nan, nan, nan, nan, power, note="a corpus bound needs at least 2 examples "
                          "(clusters)")
    g, d, scale = int(parts["groups"]), parts["d"], float(parts["scale"])
    sd = float(np.std(d, ddof=1))
    row = {k: float(np.ravel(v)[0]) for k, v in score_bound_arrays(parts["difference"], sd, scale, g, margin,
                                                                     alpha).items()}
    identical = bool(np.all(d == 0)) and parts["difference"] == 0
    clustered = clusters is not None
    effect = math.nan
    if clustered:
        iid = linearised_difference(score_a, score_b, n)
        iid_variance = float(np.var(iid["d"], ddof=1)) / n
        effect = (sd * sd / g) / iid_variance if iid_variance > 0 else math.nan
    note = (f"{g} clusters of {n} examples, left out one cluster at a time" if clustered else
            f"jackknife over {n} examples") + f"; a changed {'cluster' if clustered else 'example'} may move the corpus score by up to {scale:.3g}"
    if identical:
        note = "identical statistics on every example; " + note
    return MarginTest(CORPUS_METHOD, n, parts["mean_a"], parts["mean_b"], parts["difference"], row["lower"],
                      row["upper"], 1 - 2 * alpha, float(margin), alpha, row["p_noninferior"], row["p_inferior"],
                      row["p_superior"], score_bound_mde(sd, scale, g, alpha=alpha, power=power), power,
                      identical=identical, note=note, spread=sd,
                      n_needed=examples_for_corpus(sd, scale, margin, alpha=alpha, power=power) * n / g,
                      clusters=g if clustered else 0, design_effect=effect, scale=scale)


def _clustered_margin_test(first: np.ndarray, second: np.ndarray, clusters: Any, *, margin: float, alpha: float,
                           power: float) -> MarginTest:
    """The mean difference with a cluster-robust SE; 0/1 scores with no change keep Tango's bound."""

    d = second - first
    n = int(d.shape[0])
    row = clustered_margin_arrays(d, clusters, margin, alpha)
    g, effect = int(row["clusters"]), float(row["design_effect"])
    identical = bool(np.all(d == 0))
    if identical and is_binary(first) and is_binary(second):
        unclustered = _binary_margin_test(first, second, margin=margin, alpha=alpha, power=power)
        return replace(unclustered, clusters=g, note=unclustered.note + f" ({g} clusters; with no change the "
                       "cluster variance is 0, so the bound is Tango's for independent pairs)")
    se = float(row["se"])
    spread = se * math.sqrt(n) if math.isfinite(se) else math.nan  # the SD an iid sample would need
    note = (f"{g} clusters of {n} pairs, design effect {effect:.3g}" if math.isfinite(effect)
            else f"{g} clusters of {n} pairs")
    if g < 2:
        note = f"a cluster-robust interval needs at least 2 clusters ({g} here)"
    return MarginTest(method=CLUSTER_METHOD, n=n, mean_a=float(first.mean()), mean_b=float(second.mean()),
                      difference=float(row["mean"]), lower=float(row["lower"]), upper=float(row["upper"]),
                      confidence=1.0 - 2.0 * alpha, margin=float(margin), alpha=alpha,
                      p_noninferior=float(row["p_noninferior"]), p_inferior=float(row["p_inferior"]),
                      p_superior=float(row["p_superior"]),
                      mde=clustered_mde(se, g - 1, alpha=alpha, power=power), power=power,
                      identical=identical, note=note, spread=spread,
                      n_needed=examples_for_mean(spread, margin, alpha=alpha, power=power),
                      clusters=g, design_effect=effect)

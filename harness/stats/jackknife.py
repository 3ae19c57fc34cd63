"""Non-inferiority of a corpus statistic (corpus BLEU, chrF, TER): a score bound on its jackknife linearisation.

A corpus score is a smooth function of the *sum* of per-example sufficient statistics, not a mean of
per-example scores. Its jackknife pseudo-values (Quenouille 1956; Tukey 1958; Efron & Stein 1981,
"The jackknife estimate of variance", Ann. Stat. 9:586) ``p_i = n θ̂ - (n - 1) θ̂_(-i)``, with
``θ̂_(-i)`` the corpus score without example ``i``, turn it into a mean: their average is the
bias-corrected estimate and ``var(p) / n`` the jackknife variance, which for a smooth function of
sums equals the delta-method variance to first order (Efron 1982, "The Jackknife, the Bootstrap
and Other Resampling Plans", ch. 3). ``d_i = p_i(b) - p_i(a)`` is example ``i``'s linearised
contribution to the paired difference ``Δ = score(b) - score(a)``. Leaving out a whole cluster
instead of one example gives the cluster jackknife (one pseudo-value per cluster).

The bound. A regression that breaks a few examples out of many is the hard case: a small eval
set may draw none of them (the paired bootstrap of Koehn 2004 then sees identical systems and
passes for certain), or a few, so that ``d`` is very skewed and a Wald (t) interval passes too
often. Tango's (1998) answer for 0/1 scores is to test each value of Δ with the variance it
implies, not the observed one. The same here: testing ``Δ = D̂ - δ`` (``δ > 0``), the least
favourable distribution with that mean puts the missing drop on rare, maximal breaks — the
observed ``d`` mixed with a share ``q = δ / w`` of examples that lose ``w``, the largest change one
example can show. Its variance is ``v(δ) = (1 - q) s² + q (1 - q) w²`` (``s``: SD of ``d``), and
the test statistic ``Z(δ) = δ √n / √v(δ)`` increases in ``δ``, so the one-sided ``1 - α`` bound
is the root of ``Z(δ) = z_(1-α)``:

    ``δ² (n + z²) + δ z² (s² / w - w) - z² s² = 0``.

With no changed example (``s = 0``) it is ``δ = z² w / (n + z²)``: Tango's bound for paired
proportions with no discordant pair, ``z² / (n + z²)``, in units of ``w``. For large ``n`` it is
``z s / √n + z² w / (2 n) + O(n^-3/2)``: the delta-method (t) bound plus a skewness margin that
vanishes as ``1 / n``. The upper bound is the same with the tilt towards gains. ``w`` is the larger
range of the two systems' pseudo-values: a change can move an example from the best contribution
seen to the worst.

Chosen by simulation (README, "Statistics"; ``tests/test_stats_corpus_bound.py``): finite
populations of 4,000 sentences' BLEU statistics (10–30 tokens, unigram precision 0.5–0.9, an
order-k precision its k-th power; a broken sentence has precision 0.25) whose population
corpus-BLEU difference is exactly the tolerance, sampled with replacement. At a 1-point tolerance
with breaks only, the paired bootstrap passed 45 % (n 30), 21.5 % (n 100) and 9 % (n 500) of 200
runs (60 % at n 30 with a 0.5-point tolerance); a studentized (delta-method t) interval 49 %, 22 %
and 12.5 % of 400; adding Tango-like handling of the no-changed-example case alone still 14 % at
n 100 and 12.5 % at n 500 (the skew remains when a few breaks are drawn); the betting bound on the
pseudo-values (their range as the scale) held its size but passed no unchanged candidate at a
1-point tolerance up to n 500. This bound held its size on the whole grid (n 30–500, tolerance
0.5–2, breaks only or breaks and fixes: at most 1.9 % of 1,000 runs); an unchanged candidate
passes a 2-point tolerance from about 150 sentences, a 1-point one from about 300 (100 % at 500),
which is what ``z² w / (n + z²) < m`` asks for one sentence's worst change ``w`` of about 100 points.
BCa (Efron 1987, "Better bootstrap confidence intervals", JASA 82:171) re-reads the same bootstrap
distribution, which is a point at 0 whenever no changed sentence is drawn, so it shares that case.

References: P. Koehn, "Statistical significance tests for machine translation evaluation", EMNLP
2004 (the paired bootstrap); T. Tango, Stat Med 17:891–908 (1998); B. Efron, C. Stein, Ann. Stat.
9:586–596 (1981); B. Efron, "The Jackknife, the Bootstrap and Other Resampling Plans", SIAM (1982).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from harness.stats.clustered import cluster_codes

#: leave-out rows are scored in batches of about this many count cells (rows × examples)
_BATCH_CELLS = 2_000_000


def leave_out_scores(score: Callable[[np.ndarray], np.ndarray], codes: np.ndarray, groups: int) -> np.ndarray:
    """The corpus score with each group left out: row ``g`` of the counts is 0 on group ``g``'s examples, 1 elsewhere.

    ``codes`` gives each example's group (0 … groups - 1; one group per example for the plain jackknife).
    """
    n = codes.shape[0]
    step = max(1, _BATCH_CELLS // max(n, 1))
    out = np.empty(groups)
    for start in range(0, groups, step):
        stop = min(start + step, groups)
        counts = (codes[None, :] != np.arange(start, stop)[:, None]).astype(np.int64)
        out[start:stop] = np.asarray(score(counts), dtype=float)
    return out


def pseudo_values(full: float, left_out: np.ndarray) -> np.ndarray:
    """Jackknife pseudo-values ``G θ̂ - (G - 1) θ̂_(-g)`` of ``G`` leave-out scores."""
    g = left_out.shape[-1]
    return g * full - (g - 1) * np.asarray(left_out, dtype=float)


def bound_distance(sd: Any, scale: Any, n: Any, alpha: float) -> np.ndarray:
    """δ: how far the one-sided ``1 - alpha`` score bound lies from the estimate (elementwise; see the module doc)."""
    from scipy import special

    z2 = float(special.ndtri(1.0 - alpha)) ** 2
    s, w, n = (np.asarray(x, dtype=float) for x in (sd, scale, n))
    w = np.maximum(w, 1e-300)
    a = n + z2
    b = z2 * (s * s / w - w)
    return (-b + np.sqrt(b * b + 4.0 * a * z2 * s * s)) / (2.0 * a)


def _z(delta: np.ndarray, sd: np.ndarray, scale: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Z(δ) = δ √n / √v(|δ|), signed like δ; ±inf where the tilted variance is 0."""
    share = np.clip(np.abs(delta) / np.maximum(scale, 1e-300), 0.0, 1.0)
    variance = (1.0 - share) * sd * sd + share * (1.0 - share) * scale * scale
    with np.errstate(divide="ignore", invalid="ignore"):
        z = delta * np.sqrt(n) / np.sqrt(variance)
    return np.where(variance > 0, z, np.where(delta > 0, np.inf, np.where(delta < 0, -np.inf, 0.0)))


def score_bound_arrays(estimate: Any, sd: Any, scale: Any, n: Any, margin: float,
                       alpha: float) -> dict[str, np.ndarray]:
    """The margin tests (same keys as :func:`harness.stats.margin.t_margin_arrays`), vectorised over runs.

    ``estimate``: the corpus difference D̂; ``sd``: SD of the per-example (per-cluster) linearised
    differences; ``scale``: ``w``; ``n``: examples (clusters). ``lower > -margin`` exactly when
    ``p_noninferior < alpha``.
    """
    from scipy import special

    d, s, w, n = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (estimate, sd, scale, n)))
    delta = bound_distance(s, w, n, alpha)
    z_margin = _z(d + margin, s, w, n)
    z_zero = _z(d, s, w, n)
    return {"mean": d, "se": s / np.sqrt(n), "lower": d - delta, "upper": d + delta,
            "p_noninferior": special.ndtr(-z_margin), "p_inferior": special.ndtr(z_margin),
            "p_superior": special.ndtr(-z_zero)}


def score_bound_mde(sd: float, scale: float, n: int, *, alpha: float, power: float) -> float:
    """The margin an unchanged candidate with this spread clears with ``power``: δ + z_power · sd / √n."""
    from scipy import special

    if n < 2 or not (math.isfinite(sd) and math.isfinite(scale)):
        return math.nan
    return float(bound_distance(sd, scale, n, alpha)) + float(special.ndtri(power)) * sd / math.sqrt(n)


def score_bound_examples(sd: float, scale: float, margin: float, *, alpha: float, power: float) -> float:
    """Examples (clusters) the bound needs for an unchanged candidate at this per-example spread to clear ``margin``."""
    if margin <= 0:
        return math.inf
    if not (math.isfinite(sd) and math.isfinite(scale)):
        return math.nan

    def enough(n: int) -> bool:
        return score_bound_mde(sd, scale, n, alpha=alpha, power=power) <= margin

    high = 2
    while not enough(high):
        high *= 2
        if high > 10**12:
            return math.inf
    low = high // 2
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if enough(middle) else (middle, high)
    return float(high)


def linearised_difference(score_a: Callable[[np.ndarray], np.ndarray], score_b: Callable[[np.ndarray], np.ndarray],
                          n: int, clusters: Any = None) -> dict[str, Any]:
    """D̂, the pseudo-value differences and the scale ``w`` of a paired corpus difference (clusters: one label per example)."""
    if clusters is None:
        codes, groups = np.arange(n), n
    else:
        codes, groups = cluster_codes(clusters)
        if codes.shape[0] != n:
            raise ValueError(f"{n} examples but {codes.shape[0]} cluster labels")
    full = np.ones((1, n), dtype=np.int64)
    full_a, full_b = float(np.asarray(score_a(full))[0]), float(np.asarray(score_b(full))[0])
    values_a = pseudo_values(full_a, leave_out_scores(score_a, codes, groups))
    values_b = pseudo_values(full_b, leave_out_scores(score_b, codes, groups))
    d = values_b - values_a
    scale = max(float(np.ptp(values_a)), float(np.ptp(values_b)))
    return {"mean_a": full_a, "mean_b": full_b, "difference": full_b - full_a, "d": d, "scale": scale,
            "groups": groups}

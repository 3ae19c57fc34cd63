"""Cluster-robust margin tests of a paired mean difference, for items that are not independent.

Several questions on one document, turns of one conversation or paraphrases of one prompt move
together, so ``n`` items carry less information than ``n`` independent ones. Following Miller
(2024), "Adding Error Bars to Evals: A Statistical Approach to Language Model Evaluations"
(arXiv:2411.00640, section 2.2, clustered standard errors), the variance of the mean difference
``d̄`` of ``n`` items in ``G`` clusters is

    V_CR = G / (G - 1) · Σ_g (Σ_{i in g} (d_i - d̄))² / n²

the cluster-robust sandwich of the intercept-only regression with the CR1 small-sample factor
``G / (G - 1)`` (Cameron & Miller 2015, "A Practitioner's Guide to Cluster-Robust Inference",
J. Human Resources 50:317, section VI.B; for one regressor CR1's ``(n - 1) / (n - K)`` is 1). It
is exactly ``statsmodels`` OLS with ``cov_type="cluster"`` on the differences. Tests and intervals
use Student's t with ``G - 1`` degrees of freedom (Cameron & Miller's recommendation with few
clusters, and what statsmodels reports with ``use_t``). With one item per cluster V_CR is the iid
variance ``s² / n``.

The **design effect** is ``V_CR / (s² / n)``: how many times the iid variance the clustering makes
it (1 for independent items, up to the cluster size for identical items within a cluster).

For 0/1 scores the same estimator is Obuchowski's (1998, "On the comparison of correlated
proportions for clustered data", Stat Med 17:1495) variance of the difference of two clustered
paired proportions, ``K/(K-1) Σ_k (x_k - y_k - n_k Δ̂)² / N²`` — algebraically the CR1 sum above —
so clustered accuracy uses it too: Tango's score interval assumes independent pairs and would be
too narrow. Where no example changed the cluster variance is 0 and says nothing, so the bound is
Tango's for independent pairs (a lower limit of the clustered one).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

CLUSTER_METHOD = "paired mean difference, cluster-robust SE (CR1, t with G-1 df)"
#: fewer clusters than this: the cluster-robust variance is itself noisy (Miller 2024; Cameron & Miller 2015)
FEW_CLUSTERS = 20


def cluster_codes(clusters: Any) -> tuple[np.ndarray, int]:
    """Integer codes of each item's cluster label and the number of clusters."""
    labels = np.asarray([str(c) for c in clusters])
    _, codes = np.unique(labels, return_inverse=True)
    return codes.reshape(-1), int(codes.max()) + 1 if codes.size else 0


def cluster_variance(differences: Any, clusters: Any) -> tuple[float, float, int]:
    """(V_CR of the mean, iid variance ``s² / n`` of the mean, number of clusters G) of ``differences``."""
    d = np.asarray(differences, dtype=float)
    n = d.shape[0]
    codes, g = cluster_codes(clusters)
    if codes.shape[0] != n:
        raise ValueError(f"{n} differences but {codes.shape[0]} cluster labels")
    if n < 2 or g < 2:
        return math.nan, math.nan, g
    sums = np.bincount(codes, weights=d - d.mean(), minlength=g)
    clustered = g / (g - 1) * float(np.sum(sums**2)) / n**2
    iid = float(np.var(d, ddof=1)) / n
    return clustered, iid, g


def design_effect(clustered: float, iid: float) -> float:
    """Clustered variance over iid variance (NaN where the iid variance is 0 or undefined)."""
    return clustered / iid if iid > 0 and math.isfinite(iid) else math.nan


def few_clusters_warning(g: int) -> str:
    """The warning a verdict carries below :data:`FEW_CLUSTERS` clusters ("" otherwise)."""
    if g >= FEW_CLUSTERS:
        return ""
    return (f"only {g} clusters (< {FEW_CLUSTERS}): the cluster-robust variance is itself uncertain, "
            "so the interval may be too narrow")


def clustered_margin_arrays(differences: Any, clusters: Any, margin: float, alpha: float) -> dict[str, float]:
    """Mean, SE, ``1 - 2 alpha`` interval and the three one-sided p-values, with the cluster-robust SE."""
    from scipy import special

    d = np.asarray(differences, dtype=float)
    clustered, iid, g = cluster_variance(d, clusters)
    mean = float(d.mean()) if d.size else math.nan
    nan = math.nan
    if not math.isfinite(clustered):
        return {"mean": mean, "se": nan, "lower": nan, "upper": nan, "p_noninferior": nan, "p_inferior": nan,
                "p_superior": nan, "clusters": g, "design_effect": nan, "df": nan}
    se = math.sqrt(clustered)
    df = g - 1
    critical = float(special.stdtrit(df, 1.0 - alpha))
    if se == 0:
        p_ni = 0.0 if mean + margin > 0 else 1.0
        p_inf = 0.0 if mean + margin < 0 else 1.0
        p_sup = 0.0 if mean > 0 else 1.0
    else:
        p_ni = float(special.stdtr(df, -(mean + margin) / se))
        p_inf = float(special.stdtr(df, (mean + margin) / se))
        p_sup = float(special.stdtr(df, -mean / se))
    return {"mean": mean, "se": se, "lower": mean - critical * se, "upper": mean + critical * se,
            "p_noninferior": p_ni, "p_inferior": p_inf, "p_superior": p_sup, "clusters": g,
            "design_effect": design_effect(clustered, iid), "df": df}


def clustered_mde(se: float, df: int, *, alpha: float, power: float) -> float:
    """The one-sided detectable difference ``(t_{1-alpha} + t_{power}) · SE`` at ``G - 1`` df."""
    from scipy import special

    if not (math.isfinite(se) and df >= 1):
        return math.nan
    return float(special.stdtrit(df, 1.0 - alpha) + special.stdtrit(df, power)) * se

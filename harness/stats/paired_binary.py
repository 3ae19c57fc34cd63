"""Score-based tests and intervals for the difference of paired proportions (0/1 scores), vectorised.

For paired 0/1 scores only the discordant pairs carry information about ``Δ = mean(b) - mean(a)``:
``fixes`` (a wrong, b right) and ``breaks`` (a right, b wrong), so ``Δ = (fixes - breaks) / n``.

Tango's score test (T. Tango, "Equivalence test and confidence interval for the difference in
proportions for the paired-sample design", Statistics in Medicine 17:891-908, 1998, eqs. 3-5):
for H0 ``Δ = Δ0``,

    Z(Δ0) = (fixes - breaks - n Δ0) / sqrt(n (2 q + Δ0 (1 - Δ0)))

where ``q`` is the maximum-likelihood estimate of P(break) restricted to ``Δ = Δ0``,
``q = (sqrt(B² - 4 A C) - B) / (2 A)`` with ``A = 2n``, ``B = -fixes - breaks + (2n - fixes +
breaks) Δ0``, ``C = -breaks Δ0 (1 - Δ0)``. ``Z(0)`` is McNemar's (uncorrected) statistic. The
interval is the set of ``Δ0`` the test does not reject; unlike Wald intervals it exists for tables
with zero off-diagonal cells: with no discordant pair at all the lower bound is
``-z² / (n + z²)``, not 0.

Newcombe's hybrid score interval ("Improved confidence intervals for the difference between
binomial proportions based on paired data", Statistics in Medicine 17:2635-2650, 1998, method 10)
combines the Wilson intervals of the two marginal proportions with the phi correlation (zeroed or
reduced by n/2 when positive, as in the paper). It is kept for the simulation that chose between the
two (README, "Statistics"): Tango's test was chosen because it holds its size at the boundary in
every tested setting while Newcombe's interval is not the dual of a test.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

TANGO_METHOD = "Tango score test of paired proportions (non-inferiority)"
_BISECTIONS = 60


def _floats(*values: Any) -> list[np.ndarray]:
    return [np.asarray(v, dtype=float) for v in values]


def tango_z(fixes: Any, breaks: Any, n: Any, delta0: Any) -> np.ndarray:
    """Tango's score statistic Z(Δ0) (elementwise); 0/0 (no discordance at Δ0 = 0) gives 0."""
    f, b, n, d0 = _floats(fixes, breaks, n, delta0)
    a_coef = 2.0 * n
    b_coef = -f - b + (2.0 * n - f + b) * d0
    c_coef = -b * d0 * (1.0 - d0)
    root = np.sqrt(np.maximum(b_coef * b_coef - 4.0 * a_coef * c_coef, 0.0))
    # the two algebraically equal forms of the positive root; the second avoids cancellation when B > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(b_coef <= 0, (root - b_coef) / (2.0 * a_coef), (2.0 * c_coef) / (-b_coef - root))
        q = np.where(np.isfinite(q), q, 0.0)
        variance = n * np.maximum(2.0 * q + d0 * (1.0 - d0), 0.0)
        z = (f - b - n * d0) / np.sqrt(variance)
    numerator = f - b - n * d0
    return np.where(variance > 0, z, np.where(numerator > 0, np.inf, np.where(numerator < 0, -np.inf, 0.0)))


def _tango_z_scalar(f: float, b: float, n: float, d0: float) -> float:
    """:func:`tango_z` for one table, in plain floats (the gate's path: one call per metric and slice)."""
    b_coef = -f - b + (2.0 * n - f + b) * d0
    c_coef = -b * d0 * (1.0 - d0)
    root = math.sqrt(max(b_coef * b_coef - 8.0 * n * c_coef, 0.0))
    denominator = -b_coef - root
    q = (root - b_coef) / (4.0 * n) if b_coef <= 0 else (2.0 * c_coef / denominator if denominator else 0.0)
    variance = n * max(2.0 * q + d0 * (1.0 - d0), 0.0)
    numerator = f - b - n * d0
    if variance > 0:
        return numerator / math.sqrt(variance)
    return math.inf if numerator > 0 else (-math.inf if numerator < 0 else 0.0)


def _scalar_bound(f: float, b: float, n: float, target: float) -> float:
    """The Δ0 in [-1, 1] where Z(Δ0) crosses ``target`` (Z decreases in Δ0), by Brent's method."""
    from scipy import optimize

    edge = 1.0 - 1e-12
    if _tango_z_scalar(f, b, n, -edge) <= target:
        return -1.0
    if _tango_z_scalar(f, b, n, edge) >= target:
        return 1.0
    return float(optimize.brentq(lambda d0: _tango_z_scalar(f, b, n, d0) - target, -edge, edge,
                                 xtol=1e-13, rtol=1e-15))


def tango_bounds(fixes: Any, breaks: Any, n: Any, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """One-sided ``1 - alpha`` lower and upper score bounds of Δ (together the ``1 - 2 alpha`` interval).

    Each bound solves ``Z(Δ0) = ±z_(1-alpha)`` by bisection on (-1, 1) (Z decreases in Δ0),
    vectorised over arrays of tables.
    """
    from scipy import special

    f, b, n = np.broadcast_arrays(*_floats(fixes, breaks, n))
    z = float(special.ndtri(1.0 - alpha))
    if f.size == 1:
        args = (float(f.ravel()[0]), float(b.ravel()[0]), float(n.ravel()[0]))
        return (np.full(f.shape, _scalar_bound(*args, z)), np.full(f.shape, _scalar_bound(*args, -z)))

    def solve(target: float) -> np.ndarray:
        low, high = np.full(f.shape, -1.0), np.full(f.shape, 1.0)
        for _ in range(_BISECTIONS):
            middle = (low + high) / 2.0
            above = tango_z(f, b, n, middle) > target
            low, high = np.where(above, middle, low), np.where(above, high, middle)
        return (low + high) / 2.0

    return solve(z), solve(-z)


def tango_margin_arrays(fixes: Any, breaks: Any, n: Any, margin: float, alpha: float) -> dict[str, np.ndarray]:
    """Tango's margin tests over arrays of tables: the same keys as :func:`harness.stats.margin.t_margin_arrays`.

    ``p_noninferior`` = P(Z >= Z(-m)), ``p_inferior`` = P(Z <= Z(-m)), ``p_superior`` = P(Z >= Z(0))
    (McNemar's score test; 1.0 without discordant pairs). ``lower > -m`` exactly when
    ``p_noninferior < alpha``.
    """
    from scipy import special

    f, b, n = np.broadcast_arrays(*_floats(fixes, breaks, n))
    lower, upper = tango_bounds(f, b, n, alpha)
    z_margin = tango_z(f, b, n, -margin)
    z_zero = tango_z(f, b, n, 0.0)
    none = (f + b) == 0
    p_sup = np.where(none, 1.0, special.ndtr(-z_zero))
    at_zero_margin = none & (margin == 0)  # Z(0) is 0/0: nothing to test
    p_ni = np.where(at_zero_margin, 1.0, special.ndtr(-z_margin))
    p_inf = np.where(at_zero_margin, 1.0, special.ndtr(z_margin))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (f - b) / n
    return {"mean": mean, "lower": lower, "upper": upper, "p_noninferior": p_ni, "p_inferior": p_inf,
            "p_superior": p_sup}


def discordant_counts(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(fixes, breaks) along the last axis of paired 0/1 arrays: b right where a was wrong, and the reverse."""
    a, b = np.asarray(a), np.asarray(b)
    return np.sum((a == 0) & (b == 1), axis=-1), np.sum((a == 1) & (b == 0), axis=-1)


def newcombe_bounds(both: Any, fixes: Any, breaks: Any, neither: Any, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Newcombe's (1998, method 10) hybrid score interval of Δ = P(b right) - P(a right), at ``1 - 2 alpha``.

    ``both`` / ``neither``: pairs where a and b are both right / both wrong. The Wilson intervals are
    statsmodels' ``proportion_confint(method="wilson")``.
    """
    from statsmodels.stats.proportion import proportion_confint

    e, f, g, h = np.broadcast_arrays(*_floats(both, fixes, breaks, neither))
    n = e + f + g + h
    b_right, a_right = e + f, e + g          # marginal counts of b and of a
    p_b, p_a = b_right / n, a_right / n
    low_b, high_b = (np.asarray(x, dtype=float) for x in proportion_confint(b_right, n, alpha=2 * alpha, method="wilson"))
    low_a, high_a = (np.asarray(x, dtype=float) for x in proportion_confint(a_right, n, alpha=2 * alpha, method="wilson"))
    product = b_right * (n - b_right) * a_right * (n - a_right)
    cross = e * h - f * g
    with np.errstate(divide="ignore", invalid="ignore"):
        phi = np.where(cross > n / 2, cross - n / 2, np.where(cross >= 0, 0.0, cross)) / np.sqrt(product)
    phi = np.where(product > 0, phi, 0.0)
    estimate = p_b - p_a
    below = np.sqrt(np.maximum((p_b - low_b) ** 2 + (high_a - p_a) ** 2 - 2 * phi * (p_b - low_b) * (high_a - p_a), 0))
    above = np.sqrt(np.maximum((high_b - p_b) ** 2 + (p_a - low_a) ** 2 - 2 * phi * (high_b - p_b) * (p_a - low_a), 0))
    return estimate - below, estimate + above


def tango_power(n: float, discordance: float, margin: float, alpha: float) -> float:
    """Asymptotic power of Tango's non-inferiority test at margin ``m`` for an unchanged candidate (Δ = 0).

    Under Δ = 0 with discordance ψ, ``fixes - breaks`` has mean 0 and variance nψ; the test rejects
    when it exceeds ``-n m + z_(1-alpha) sqrt(n V0)`` with V0 the null variance at the expected counts
    (Nam 1997, Biometrics 53:1422, the sample size of this score test). Without discordance the
    outcome is certain: power 1 when ``Z(-m)`` with no discordant pair clears the critical value.
    """
    from scipy import special

    z = float(special.ndtri(1.0 - alpha))
    expected = n * discordance / 2.0
    z_null = _tango_z_scalar(expected, expected, n, -margin)  # = n m / sqrt(n V0)
    if discordance == 0:
        return 1.0 if z_null > z else 0.0
    null_sd = n * margin / z_null if z_null > 0 else math.inf
    return float(special.ndtr((n * margin - z * null_sd) / math.sqrt(n * discordance)))


def _null_variance(f: float, b: float, n: float, d0: float) -> float:
    """``2 q + Δ0 (1 - Δ0)``: the per-pair variance of ``fixes - breaks`` under H0 ``Δ = Δ0`` (Tango's denominator)."""
    b_coef = -f - b + (2.0 * n - f + b) * d0
    c_coef = -b * d0 * (1.0 - d0)
    root = math.sqrt(max(b_coef * b_coef - 8.0 * n * c_coef, 0.0))
    denominator = -b_coef - root
    q = (root - b_coef) / (4.0 * n) if b_coef <= 0 else (2.0 * c_coef / denominator if denominator else 0.0)
    return max(2.0 * q + d0 * (1.0 - d0), 0.0)


def tango_regression_power(n: float, drop: float, discordance: float, margin: float, alpha: float) -> float:
    """Asymptotic power of Tango's inferiority test (H0 ``Δ >= -m``) at a true drop ``drop`` (> m).

    The discordance is at least the drop (every changed example a break): ``max(discordance, drop)``.
    ``fixes - breaks`` has mean ``-n drop`` and variance ``n (ψ - drop²)``; the test rejects when it
    falls below ``-n m - z_(1-alpha) sqrt(n V0)``, V0 the null variance at the expected counts.
    """
    from scipy import special

    psi = min(1.0, max(discordance, drop))
    fixes, breaks = n * (psi - drop) / 2.0, n * (psi + drop) / 2.0
    z = float(special.ndtri(1.0 - alpha))
    spread = math.sqrt(max(n * (psi - drop * drop), 0.0))
    reach = n * (drop - margin) - z * math.sqrt(n * _null_variance(fixes, breaks, n, -margin))
    if spread == 0:
        return 1.0 if reach > 0 else 0.0
    return float(special.ndtr(reach / spread))


def tango_regression_mde(n: int, discordance: float, margin: float, *, alpha: float, power: float) -> float:
    """The smallest true drop beyond ``margin`` that Tango's inferiority test shows with ``power`` (inf: none)."""
    from scipy import optimize

    if n < 1:
        return math.nan
    top = 1.0 - 1e-9
    if margin >= top or tango_regression_power(n, top, discordance, margin, alpha) < power:
        return math.inf
    drop = optimize.brentq(lambda x: tango_regression_power(n, x, discordance, margin, alpha) - power,
                           margin, top, xtol=1e-12, rtol=1e-10)
    return float(drop - margin)


def tango_mde(n: int, discordance: float, *, alpha: float, power: float) -> float:
    """The smallest margin an unchanged candidate (Δ = 0) at this discordance clears with ``power``.

    Without discordance the bound is certain: ``z² / (n + z²)``. NaN for no pairs.
    """
    from scipy import optimize, special

    if n < 1 or not 0.0 <= discordance <= 1.0:
        return math.nan
    z = float(special.ndtri(1.0 - alpha))
    if discordance == 0:
        return z * z / (n + z * z)
    if tango_power(n, discordance, 1.0, alpha) < power:
        return math.inf
    return float(optimize.brentq(lambda m: tango_power(n, discordance, m, alpha) - power, 1e-12, 1.0,
                                 xtol=1e-12, rtol=1e-10))


def tango_sample_size(discordance: float, margin: float, *, alpha: float, power: float) -> int:
    """Pairs Tango's test needs to show non-inferiority at ``margin`` with ``power`` for an unchanged candidate."""
    if margin <= 0:
        return 0 if margin < 0 else -1
    high = 1
    while tango_power(high, discordance, margin, alpha) < power:
        high *= 2
        if high > 10**12 or margin < 1e-9:
            return -1
    low = high // 2
    while high - low > 1:
        middle = (low + high) // 2
        if tango_power(middle, discordance, margin, alpha) >= power:
            high = middle
        else:
            low = middle
    return high

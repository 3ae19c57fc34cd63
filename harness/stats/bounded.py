"""Margin tests of the mean of bounded paired differences, valid at every sample size.

The predictable plug-in empirical-Bernstein (PrPl-EB) bound of I. Waudby-Smith and A. Ramdas,
"Estimating means of bounded random variables by betting", JRSS-B 86(1):1–27 (2024;
arXiv:2010.09686), Theorem 2 with the fixed-sample-size bets of its section 3 ("Remark: fixed n").
For ``X_i`` in [0, 1] with mean ``μ``, predictable bets ``λ_i`` in [0, 1) and
``ψ_E(λ) = (−log(1 − λ) − λ) / 4``, the process

    ``M_t(m) = Π_{i ≤ t} exp(λ_i (X_i − m) − v_i ψ_E(λ_i))``,  ``v_i = 4 (X_i − μ̂_{i−1})²``

is a nonnegative supermartingale under ``μ = m`` (and under ``μ ≤ m``), so by Ville's inequality
``P(M_n(μ) ≥ 1/α) ≤ α``. Its one-sided lower confidence bound is

    ``L = (Σ λ_i X_i − log(1/α) − Σ v_i ψ_E(λ_i)) / Σ λ_i``,

and ``min(1, 1 / M_n(m))`` is a p-value for ``μ ≤ m`` (``L > m`` exactly when it is below α). The
plug-ins are ``μ̂_t = (1/2 + Σ_{i≤t} X_i) / (t + 1)``, ``σ̂²_t = (1/4 + Σ_{i≤t} (X_i − μ̂_i)²) / (t + 1)``
and ``λ_i = min(sqrt(2 log(1/α) / (n σ̂²_{i−1})), c)`` with the paper's truncation ``c = 3/4``.

A paired difference ``d = b − a`` of scores in ``[lo, hi]`` lies in ``[−R, R]`` (``R = hi − lo``) and is
mapped to ``X = (d + R) / 2R``. Unlike a t or bootstrap interval, this bound holds for every
distribution of the differences, including "most examples unchanged, a few drop by 30 points" at
small n, where none of the few broken examples may have been drawn.
"""

from __future__ import annotations

import math

import numpy as np

TRUNCATION = 0.75  # the paper's c: bets stay below 3/4 of the capital


def _psi_e(lam: np.ndarray) -> np.ndarray:
    """ψ_E(λ) = (−log(1 − λ) − λ) / 4 (Waudby-Smith & Ramdas, eq. (12))."""
    return (-np.log1p(-lam) - lam) / 4.0


def _bets(x: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """The predictable bets ``λ_i`` and variance terms ``v_i ψ_E(λ_i)`` over the last axis of ``x`` in [0, 1]."""
    n = x.shape[-1]
    t = np.arange(1, n + 1, dtype=float)
    mu = (0.5 + np.cumsum(x, axis=-1)) / (t + 1.0)                      # μ̂_t, t = 1..n
    mu_before = np.concatenate([np.full((*x.shape[:-1], 1), 0.5), mu[..., :-1]], axis=-1)   # μ̂_{i−1}
    var = (0.25 + np.cumsum((x - mu) ** 2, axis=-1)) / (t + 1.0)       # σ̂²_t
    var_before = np.concatenate([np.full((*x.shape[:-1], 1), 0.25), var[..., :-1]], axis=-1)
    lam = np.minimum(np.sqrt(2.0 * math.log(1.0 / alpha) / (n * var_before)), TRUNCATION)
    penalty = 4.0 * (x - mu_before) ** 2 * _psi_e(lam)
    return lam, penalty


def _log_capital(x: np.ndarray, lam: np.ndarray, penalty: np.ndarray, m: float) -> np.ndarray:
    """log M_n(m) of the supermartingale above, per row."""
    return np.sum(lam * (x - m) - penalty, axis=-1)


def _rescaled(differences: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The mean and standard error of ``differences`` in ``[−radius, radius]`` over the last axis, and
    the differences mapped onto ``[0, 1]``, where the bounds are computed (refused outside the range)."""
    d = np.asarray(differences, dtype=float)
    if not (math.isfinite(radius) and radius > 0):
        raise ValueError(f"radius must be a finite number > 0, got {radius!r}")
    if np.any(np.abs(d) > radius * (1 + 1e-12)):
        raise ValueError(f"differences must lie in [-{radius:g}, {radius:g}]")
    n = d.shape[-1]
    mean = d.mean(axis=-1)
    se = d.std(axis=-1, ddof=1) / math.sqrt(n) if n > 1 else np.full(mean.shape, np.nan)
    return mean, se, np.clip((d + radius) / (2.0 * radius), 0.0, 1.0)


def eb_margin_arrays(differences: np.ndarray, margin: float, alpha: float, radius: float) -> dict[str, np.ndarray]:
    """PrPl-EB margin tests over the last axis of ``differences`` in ``[−radius, radius]`` (one row per run).

    Same keys as :func:`harness.stats.margin.t_margin_arrays`: ``mean``, ``se``, ``lower`` / ``upper``
    (one-sided ``1 − alpha`` bounds each), and the p-values ``1 / M_n`` of the three one-sided nulls.
    """
    mean, se, x = _rescaled(differences, radius)
    lam, penalty = _bets(x, alpha)
    total = lam.sum(axis=-1)
    log_level = math.log(1.0 / alpha)
    # the bets depend on the spread only, so the upper bound is the lower bound of 1 − X with the same λ
    lower_x = (np.sum(lam * x, axis=-1) - log_level - penalty.sum(axis=-1)) / total
    upper_x = (np.sum(lam * x, axis=-1) + log_level + penalty.sum(axis=-1)) / total

    def to_x(value: float) -> float:
        return (value + radius) / (2.0 * radius)

    with np.errstate(over="ignore"):
        p_ni = np.minimum(1.0, np.exp(-_log_capital(x, lam, penalty, to_x(-margin))))
        p_inf = np.minimum(1.0, np.exp(-_log_capital(1.0 - x, lam, penalty, 1.0 - to_x(-margin))))
        p_sup = np.minimum(1.0, np.exp(-_log_capital(x, lam, penalty, to_x(0.0))))
    return {"mean": mean, "se": se, "lower": np.maximum(2.0 * radius * lower_x - radius, -radius),
            "upper": np.minimum(2.0 * radius * upper_x - radius, radius),
            "p_noninferior": p_ni, "p_inferior": p_inf, "p_superior": p_sup}


def eb_half_width(n: int, sd: float, radius: float, alpha: float) -> float:
    """The PrPl-EB bound's distance below the mean for ``n`` differences of SD ``sd`` (its large-n plug-in form).

    With every ``σ̂²_{i−1}`` at ``s² = (sd / 2R)²``: ``λ = min(sqrt(2 log(1/α) / (n s²)), c)`` and the
    width is ``2R (log(1/α) + n s² (−log(1 − λ) − λ)) / (n λ)``; the planner and the MDE read it.
    """
    if n < 1:
        return math.inf
    s2 = max((sd / (2.0 * radius)) ** 2, 1e-300)
    level = math.log(1.0 / alpha)
    lam = min(math.sqrt(2.0 * level / (n * s2)), TRUNCATION)
    return 2.0 * radius * (level + n * s2 * (-math.log1p(-lam) - lam)) / (n * lam)


def _log_betting_capital(x: np.ndarray, lam: np.ndarray, m: np.ndarray) -> np.ndarray:
    """log K_n^+(m) = Σ log(1 + min(λ_i, c/m)(X_i − m)) per row (Waudby-Smith & Ramdas, Theorem 3)."""
    m = np.asarray(m, dtype=float)[..., None]
    bet = np.minimum(lam, TRUNCATION / np.maximum(m, 1e-300))
    return np.sum(np.log1p(bet * (x - m)), axis=-1)


def _betting_lower(x: np.ndarray, lam: np.ndarray, alpha: float, iterations: int = 50) -> np.ndarray:
    """inf{m : K_n^+(m) < 1/α} per row, by bisection: each factor, hence K_n^+, falls as m grows."""
    level = math.log(1.0 / alpha)
    low = np.zeros(x.shape[:-1])
    high = np.ones(x.shape[:-1])
    for _ in range(iterations):
        middle = (low + high) / 2.0
        rejected = _log_betting_capital(x, lam, middle) >= level
        low = np.where(rejected, middle, low)
        high = np.where(rejected, high, middle)
    return low


def betting_margin_arrays(differences: np.ndarray, margin: float, alpha: float,
                          radius: float) -> dict[str, np.ndarray]:
    """Betting (hedged-capital, one-sided) margin tests over the last axis of ``differences`` in ``[−radius, radius]``.

    ``K_n^+(m) = Π (1 + λ_i(m)(X_i − m))`` with ``λ_i(m) = min(λ_i^PrPl, c / m)`` is a nonnegative
    martingale under mean ``m`` (Waudby-Smith & Ramdas 2024, Theorem 3 and section 5.1), so
    ``{m : K_n^+(m) < 1/α}`` is a one-sided ``1 − α`` set whose infimum is the lower bound, and
    ``min(1, 1/K_n^+(m))`` the p-value of ``mean ≤ m``; the upper bound is the same on ``1 − X``.
    """
    mean, se, x = _rescaled(differences, radius)
    lam, _ = _bets(x, alpha)
    lower_x = _betting_lower(x, lam, alpha)
    upper_x = 1.0 - _betting_lower(1.0 - x, lam, alpha)
    at_margin = np.full(mean.shape, (radius - margin) / (2.0 * radius))
    at_zero = np.full(mean.shape, 0.5)
    with np.errstate(over="ignore"):
        p_ni = np.minimum(1.0, np.exp(-_log_betting_capital(x, lam, at_margin)))
        p_inf = np.minimum(1.0, np.exp(-_log_betting_capital(1.0 - x, lam, 1.0 - at_margin)))
        p_sup = np.minimum(1.0, np.exp(-_log_betting_capital(x, lam, at_zero)))
    return {"mean": mean, "se": se, "lower": 2.0 * radius * lower_x - radius,
            "upper": 2.0 * radius * upper_x - radius,
            "p_noninferior": p_ni, "p_inferior": p_inf, "p_superior": p_sup}

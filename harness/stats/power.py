"""Power and minimum detectable effect (MDE) of the paired tests ``compare`` uses.

Paired t-test (continuous scores). For n pairs whose differences have standard deviation
``sd``, a true mean difference ``delta`` gives the t statistic a noncentral t distribution
with ``n - 1`` degrees of freedom and noncentrality ``delta * sqrt(n) / sd``. The power is
the probability that it falls beyond the critical value ``t(1 - alpha)`` (one-sided) or
``t(1 - alpha/2)`` in either tail (two-sided); scipy's ``nctdtr`` gives it exactly. The MDE
is the smallest ``delta`` whose power reaches the target (``scipy.optimize.brentq``).

McNemar (binary scores). With a discordance rate ``psi`` (share of examples where exactly
one of a, b is right) and a true accuracy difference ``delta = P(b fixes) - P(b breaks)``,
the number of discordant pairs is Binomial(n, psi) and, given D of them, the fixes are
Binomial(D, (psi + delta) / (2 psi)). The power sums, over D, the probability that
:func:`~harness.stats.paired_tests.mcnemar` (exact below ``exact_below``, continuity-corrected
chi-square above) rejects; the MDE solves it for ``delta`` at fixed ``psi``.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from harness.stats._inputs import check_alternative, check_probability


def _check_levels(alpha: float, power: float | None = None) -> None:
    check_probability(alpha, "alpha")
    if power is not None:
        check_probability(power, "power")
        if power <= alpha:
            raise ValueError(f"power ({power}) must exceed alpha ({alpha})")


def _tail(probability: float, noncentrality: float) -> float:
    """A tail probability of the noncentral t; NaN from scipy in the far tail becomes 0.

    scipy's ``nctdtr`` can return NaN for the tail on the opposite side of a large
    noncentrality. That tail is below ``Phi(-|nc|)``, so it is 0 to double precision there.
    """
    if math.isnan(probability):
        from scipy import special

        if special.ndtr(-abs(noncentrality)) < 1e-12:
            return 0.0
    return float(probability)


def _t_power(n: int, noncentrality: float, alpha: float, alternative: str) -> float:
    from scipy import special

    df = n - 1
    tail = alpha / 2 if alternative == "two-sided" else alpha
    critical = special.stdtrit(df, 1 - tail)
    upper = _tail(1.0 - special.nctdtr(df, noncentrality, critical), noncentrality)
    lower = _tail(special.nctdtr(df, noncentrality, -critical), noncentrality)
    if alternative == "greater":
        return upper
    if alternative == "less":
        return lower
    return upper + lower


def paired_power(n: int, sd: float, delta: float, *, alpha: float = 0.05,
                 alternative: str = "two-sided") -> float:
    """Probability that a paired t-test on ``n`` pairs detects a true mean difference ``delta``.

    One-sided alternatives count detections in the stated direction only ("greater" for
    delta > 0, "less" for delta < 0). NaN for fewer than 2 pairs.
    """
    check_alternative(alternative)
    _check_levels(alpha)
    if sd < 0 or not math.isfinite(sd):
        raise ValueError(f"sd must be a finite non-negative number, got {sd}")
    if n < 2:
        return math.nan
    if sd == 0:  # every difference equals delta: the t statistic is 0/0 or infinite
        if delta == 0:
            return math.nan
        return 1.0 if alternative == "two-sided" or (alternative == "greater") == (delta > 0) \
            else 0.0
    return _t_power(n, delta * math.sqrt(n) / sd, alpha, alternative)


def mde(n: int, sd: float, *, alpha: float = 0.05, power: float = 0.8,
        alternative: str = "two-sided") -> float:
    """Smallest mean difference (a magnitude, in score units) a paired t-test detects.

    Detection means power >= ``power`` at level ``alpha``, in the direction of a one-sided
    ``alternative``. NaN for fewer than 2 pairs (no test); 0.0 when ``sd`` is 0.
    """
    from scipy import optimize, special

    check_alternative(alternative)
    _check_levels(alpha, power)
    if sd < 0 or not math.isfinite(sd):
        raise ValueError(f"sd must be a finite non-negative number, got {sd}")
    if n < 2:
        return math.nan
    if sd == 0:
        return 0.0
    sign = -1.0 if alternative == "less" else 1.0
    tail = alpha / 2 if alternative == "two-sided" else alpha
    # The normal approximation (z_tail + z_power) slightly undershoots the t answer.
    guess = float(special.ndtri(1 - tail) + special.ndtri(power))

    def shortfall(noncentrality: float) -> float:
        return _t_power(n, sign * noncentrality, alpha, alternative) - power

    low, high = 0.5 * guess, 1.5 * guess
    while shortfall(low) > 0:
        low *= 0.5
    while shortfall(high) < 0:
        high *= 2.0
    noncentrality = optimize.brentq(shortfall, low, high, xtol=1e-13, rtol=1e-13)
    return float(noncentrality * sd / math.sqrt(n))


def _mcnemar_rejection_thresholds(n: int, alpha: float, alternative: str,
                                  exact_below: int) -> tuple[np.ndarray, np.ndarray]:
    """For D = 0..n discordant pairs: ``mcnemar`` rejects iff fixes <= low[D] or >= high[D].

    ``low = -1`` / ``high = D + 1`` mean no rejection in that tail. Below ``exact_below`` the
    thresholds come from the exact binomial p-values, above from the chi-square / normal
    rejection boundary of the continuity-corrected statistic.
    """
    from scipy import special

    counts = np.arange(n + 1)
    low = np.full(n + 1, -1, dtype=np.int64)
    high = counts + 1
    for d in range(1, min(exact_below, n + 1)):
        fixes = np.arange(d + 1)
        lower = special.bdtr(fixes, d, 0.5)  # P(X <= fixes)
        upper = special.bdtrc(fixes - 1, d, 0.5) if d else lower  # P(X >= fixes)
        upper = np.where(fixes == 0, 1.0, upper)
        if alternative == "two-sided":
            p_lower = np.minimum(1.0, 2.0 * np.minimum(lower, upper))
            p_upper = p_lower
        else:
            p_lower = lower if alternative == "less" else np.ones(d + 1)
            p_upper = upper if alternative == "greater" else np.ones(d + 1)
        reject_low = fixes[(p_lower < alpha) & (fixes < d / 2)]
        reject_high = fixes[(p_upper < alpha) & (fixes > d / 2)]
        low[d] = reject_low.max() if reject_low.size else -1
        high[d] = reject_high.min() if reject_high.size else d + 1
    large = counts >= max(exact_below, 1)
    discordant = counts[large].astype(float)
    root = np.sqrt(discordant)
    if alternative == "less":
        # reject when (2 f - D + 1) / sqrt(D) < z_alpha
        low[large] = np.ceil((discordant - 1 + root * special.ndtri(alpha)) / 2) - 1
    elif alternative == "greater":
        # reject when (2 f - D - 1) / sqrt(D) > z_(1 - alpha)
        high[large] = np.floor((discordant + 1 + root * special.ndtri(1 - alpha)) / 2) + 1
    else:
        # reject when |2 f - D| - 1 > sqrt(D) z_(1 - alpha/2)
        reach = 1 + root * special.ndtri(1 - alpha / 2)
        low[large] = np.ceil((discordant - reach) / 2) - 1
        high[large] = np.floor((discordant + reach) / 2) + 1
    return np.clip(low, -1, counts), np.clip(high, 0, counts + 1)


def _support(n: int, discordance: float) -> np.ndarray:
    """The discordant-pair counts D whose Binomial(n, ψ) probability is not negligible (all others sum
    below 1e-15): the power sums over them only, O(sqrt(n)) terms instead of n + 1."""
    from scipy import stats

    low = int(stats.binom.ppf(1e-16, n, discordance))
    high = int(stats.binom.isf(1e-16, n, discordance))
    return np.arange(max(low - 1, 0), min(high + 1, n) + 1)


def _mcnemar_power_given(weights: np.ndarray, low: np.ndarray, high: np.ndarray,
                         discordance: float, delta: float, counts: np.ndarray) -> float:
    from scipy import special

    fix_rate = min(1.0, max(0.0, (discordance + delta) / (2.0 * discordance)))
    in_low = np.where(low >= 0, special.bdtr(np.maximum(low, 0), counts, fix_rate), 0.0)
    in_high = np.where(high <= counts,
                       special.bdtrc(np.maximum(high - 1, 0), counts, fix_rate), 0.0)
    in_high = np.where(high == 0, 1.0, in_high)
    return float(np.clip(np.sum(weights * (in_low + in_high)), 0.0, 1.0))


def _check_mcnemar_inputs(n: int, discordance: float, alpha: float, alternative: str) -> None:
    check_alternative(alternative)
    _check_levels(alpha)
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    if not 0.0 <= discordance <= 1.0:
        raise ValueError(f"discordance must be in [0, 1], got {discordance}")


def mcnemar_power(n: int, discordance: float, delta: float, *, alpha: float = 0.05,
                  alternative: str = "two-sided", exact_below: int = 25) -> float:
    """Probability that ``mcnemar`` on ``n`` pairs detects an accuracy difference ``delta``.

    ``discordance`` is the share of examples on which exactly one of a, b is right; it
    bounds the difference: ``|delta| <= discordance``. NaN without pairs or discordance.
    """
    from scipy import stats

    _check_mcnemar_inputs(n, discordance, alpha, alternative)
    if abs(delta) > discordance + 1e-12:
        raise ValueError(f"|delta| ({abs(delta)}) cannot exceed the discordance ({discordance})")
    if n < 1 or discordance == 0:
        return math.nan
    low, high = _mcnemar_rejection_thresholds(n, alpha, alternative, exact_below)
    counts = _support(n, discordance)
    weights = stats.binom.pmf(counts, n, discordance)
    return _mcnemar_power_given(weights, low[counts], high[counts], discordance, delta, counts)


def mcnemar_mde(n: int, discordance: float, *, alpha: float = 0.05, power: float = 0.8,
                alternative: str = "two-sided", exact_below: int = 25) -> float:
    """Smallest accuracy difference (a magnitude) ``mcnemar`` detects at this discordance.

    ``inf`` when even ``|delta| = discordance`` (every discordant pair going one way) stays
    below the target power; NaN for no pairs or no discordance (nothing to estimate from).
    Memoised: it depends only on its arguments and a gate asks the same question often.
    """
    _check_mcnemar_inputs(n, discordance, alpha, alternative)
    _check_levels(alpha, power)
    return _mcnemar_mde_cached(int(n), float(discordance), float(alpha), float(power), alternative,
                               int(exact_below))


@functools.lru_cache(maxsize=4096)
def _mcnemar_mde_cached(n: int, discordance: float, alpha: float, power: float, alternative: str,
                        exact_below: int) -> float:
    from scipy import optimize, stats

    if n < 1 or discordance == 0:
        return math.nan
    sign = -1.0 if alternative == "less" else 1.0
    low, high = _mcnemar_rejection_thresholds(n, alpha, alternative, exact_below)
    counts = _support(n, discordance)
    weights = stats.binom.pmf(counts, n, discordance)
    low, high = low[counts], high[counts]

    def shortfall(magnitude: float) -> float:
        return _mcnemar_power_given(weights, low, high, discordance, sign * magnitude, counts) - power

    if shortfall(discordance) < 0:
        return math.inf
    return float(optimize.brentq(shortfall, 0.0, discordance, xtol=1e-12, rtol=1e-12))

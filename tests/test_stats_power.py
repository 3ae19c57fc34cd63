"""Power and MDE: the noncentral-t power against numerical integration, McNemar against enumeration."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, special, stats

from harness.stats import mcnemar, mcnemar_mde, mcnemar_power, mde, paired_power

ALTERNATIVE = st.sampled_from(["two-sided", "greater", "less"])


def integrated_t_power(n, sd, delta, alpha, alternative):
    """Power by integrating over the sample variance: T = (Z + nc) / sqrt(V / df), V ~ chi2(df)."""
    df = n - 1
    nc = delta * math.sqrt(n) / sd
    tail = alpha / 2 if alternative == "two-sided" else alpha
    critical = stats.t.ppf(1 - tail, df)
    log_norm = (df / 2) * math.log(2) + special.gammaln(df / 2)

    def given_v(v):
        scale = critical * math.sqrt(v / df)
        weight = math.exp((df / 2 - 1) * math.log(v) - v / 2 - log_norm)
        upper = special.ndtr(nc - scale) if alternative != "less" else 0.0
        lower = special.ndtr(-scale - nc) if alternative != "greater" else 0.0
        return (upper + lower) * weight

    low, high = stats.chi2.ppf([1e-15, 1 - 1e-15], df)
    value, _ = integrate.quad(given_v, low, high, points=[df], epsabs=1e-12, epsrel=1e-11,
                              limit=400)
    return value


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 400), sd=st.floats(0.01, 10), effect=st.floats(-1.5, 1.5),
       alpha=st.sampled_from([0.01, 0.05, 0.1]), alternative=ALTERNATIVE)
def test_t_power_equals_numerical_integration(n, sd, effect, alpha, alternative):
    delta = effect * sd
    expected = integrated_t_power(n, sd, delta, alpha, alternative)
    assert paired_power(n, sd, delta, alpha=alpha, alternative=alternative) == pytest.approx(
        expected, abs=1e-8)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 5000), sd=st.floats(1e-3, 100), alpha=st.sampled_from([0.01, 0.05]),
       power=st.sampled_from([0.5, 0.8, 0.9]), alternative=ALTERNATIVE)
def test_mde_reaches_the_target_power_exactly(n, sd, alpha, power, alternative):
    detectable = mde(n, sd, alpha=alpha, power=power, alternative=alternative)
    signed = -detectable if alternative == "less" else detectable
    assert detectable > 0
    assert paired_power(n, sd, signed, alpha=alpha, alternative=alternative) == pytest.approx(
        power, abs=1e-9)
    # Scale: the MDE is proportional to the SD of the differences.
    assert mde(n, 2 * sd, alpha=alpha, power=power, alternative=alternative) == pytest.approx(
        2 * detectable, rel=1e-9)


def test_mde_behaviour():
    # Large n approaches the normal-approximation formula (z_(1-alpha/2) + z_power) sd / sqrt(n).
    normal = (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) / math.sqrt(100_000)
    assert mde(100_000, 1.0) == pytest.approx(normal, rel=1e-3)
    assert mde(50, 1.0) > mde(500, 1.0) > mde(5000, 1.0)
    assert mde(100, 1.0, alternative="less") == mde(100, 1.0, alternative="greater")
    assert mde(100, 1.0, alternative="less") < mde(100, 1.0)
    assert math.isnan(mde(1, 1.0)) and mde(10, 0.0) == 0.0
    with pytest.raises(ValueError, match="power"):
        mde(10, 1.0, power=0.01, alpha=0.05)
    with pytest.raises(ValueError, match="alpha must be strictly between 0 and 1"):
        mde(10, 1.0, alpha=1.5)


def enumerated_mcnemar_power(n, discordance, delta, alpha, alternative):
    """Sum over every (discordant count, fixes) outcome of P(outcome) * [mcnemar rejects]."""
    fix_rate = (discordance + delta) / (2 * discordance)
    total = 0.0
    for d in range(n + 1):
        weight = stats.binom.pmf(d, n, discordance)
        for fixes in range(d + 1):
            a = np.array([0] * fixes + [1] * (d - fixes) + [1] * (n - d))
            b = np.array([1] * fixes + [0] * (d - fixes) + [1] * (n - d))
            if mcnemar(a, b, alternative=alternative).p_value < alpha:
                total += weight * stats.binom.pmf(fixes, d, fix_rate)
    return total


@settings(max_examples=12, deadline=None)
@given(n=st.integers(1, 45), discordance=st.floats(0.05, 1.0), share=st.floats(-1, 1),
       alpha=st.sampled_from([0.05, 0.1]), alternative=ALTERNATIVE)
def test_mcnemar_power_equals_enumeration_over_outcomes(n, discordance, share, alpha,
                                                        alternative):
    delta = share * discordance
    expected = enumerated_mcnemar_power(n, discordance, delta, alpha, alternative)
    ours = mcnemar_power(n, discordance, delta, alpha=alpha, alternative=alternative)
    assert ours == pytest.approx(expected, abs=1e-9)


def test_mcnemar_power_at_a_size_with_the_chi_square_branch():
    for alternative in ("two-sided", "greater", "less"):
        delta = -0.05 if alternative == "less" else 0.05
        expected = enumerated_mcnemar_power(60, 0.5, delta, 0.05, alternative)
        assert mcnemar_power(60, 0.5, delta, alternative=alternative) == pytest.approx(
            expected, abs=1e-9)


def test_mcnemar_mde_reaches_the_target_and_reports_undetectable():
    for alternative in ("two-sided", "greater", "less"):
        detectable = mcnemar_mde(300, 0.3, alternative=alternative)
        signed = -detectable if alternative == "less" else detectable
        assert 0 < detectable < 0.3
        assert mcnemar_power(300, 0.3, signed, alternative=alternative) == pytest.approx(
            0.8, abs=1e-9)
    assert mcnemar_mde(10, 0.1) == math.inf  # one expected discordant pair: hopeless
    assert math.isnan(mcnemar_mde(10, 0.0))
    with pytest.raises(ValueError, match="cannot exceed the discordance"):
        mcnemar_power(10, 0.2, 0.3)

"""Sample sizes: how many paired examples a non-inferiority verdict needs at given rates (``ft-harness plan``).

Each answers the question the gate's MDE answers, solved for n instead of the margin: the number of
paired examples at which a candidate with no true change clears the tolerance ``margin`` with
``power`` at one-sided level ``alpha``, by the test the gate uses for that score type:

* 0/1 scores at discordance ψ (share of examples whose score changed): Tango's score test
  (:func:`harness.stats.paired_binary.tango_sample_size`, after Nam 1997);
* per-example scores known to lie in a range of width ``radius`` (ROUGE, SemScore, Brier): the
  betting interval of :mod:`harness.stats.bounded`, through its empirical-Bernstein plug-in width
  scaled by ``ratio`` (the observed bound's width over the plug-in width at the observed n);
* other per-example means with SD ``sd`` of the paired differences: the paired t test (exact
  noncentral t power, :func:`harness.stats.power.mde`);
* a corpus statistic whose per-example linearised differences have SD ``sd`` and whose examples
  may each move it by up to ``scale``: the score bound of :mod:`harness.stats.jackknife`.

``math.inf`` means no eval-set size will do (a zero margin); 0 means any size will.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from harness.stats.bounded import betting_margin_arrays, eb_half_width
from harness.stats.jackknife import score_bound_examples
from harness.stats.paired_binary import tango_sample_size
from harness.stats.power import mde

_LARGEST = 1e12  # beyond this many examples the answer is "no realistic eval set"


def examples_for_binary(discordance: float, margin: float, *, alpha: float = 0.05, power: float = 0.8) -> float:
    """Pairs Tango's test needs for an unchanged candidate at this discordance to clear ``margin``."""
    if margin <= 0:
        return math.inf
    needed = tango_sample_size(discordance, margin, alpha=alpha, power=power)
    return math.inf if needed < 0 else float(needed)


def examples_for_mean(sd: float, margin: float, *, alpha: float = 0.05, power: float = 0.8) -> float:
    """Pairs the paired t test needs for an unchanged candidate with difference SD ``sd`` to clear ``margin``."""
    from scipy import special

    if margin <= 0:
        return math.inf
    if not math.isfinite(sd):
        return math.nan
    if sd == 0:
        return 2.0
    ratio = float(special.ndtri(1 - alpha) + special.ndtri(power)) * sd / margin
    approximate = ratio * ratio  # inf, not an overflow error, for a margin far below the SD
    if not approximate < _LARGEST:
        return math.inf

    def enough(n: int) -> bool:
        return mde(n, sd, alpha=alpha, power=power, alternative="greater") <= margin

    # the normal approximation is within a few per cent of the answer: bracket it with growing steps,
    # then bisect (the MDE falls as n grows), so a 10^10-pair answer costs tens of MDEs, not millions
    high, step = max(2, math.ceil(approximate)), max(1, math.ceil(approximate) // 100)
    while not enough(high):
        high, step = high + step, step * 2
    step = max(1, high // 100)
    low = high - step
    while low >= 2 and enough(low):
        high, step = low, step * 2
        low = high - step
    low = max(low, 1)  # not enough, or fewer than the 2 pairs a test needs
    while high - low > 1:
        middle = (low + high) // 2
        if enough(middle):
            high = middle
        else:
            low = middle
    return float(high)


def examples_for_corpus(sd: float, scale: float, margin: float, *, alpha: float = 0.05,
                        power: float = 0.8) -> float:
    """Examples a corpus statistic needs, from the SD of its per-example linearised differences and its scale."""
    return score_bound_examples(sd, scale, margin, alpha=alpha, power=power)


def examples_for_bounded(sd: float, radius: float, margin: float, *, alpha: float = 0.05, power: float = 0.8,
                         ratio: float | None = None) -> float:
    """Pairs the betting test needs for an unchanged candidate at SD ``sd`` (scores in a range of
    ``radius``) to clear ``margin``: its bound's distance below the mean plus ``z_power`` standard errors.

    With ``ratio`` (a run's observed bound width over the empirical-Bernstein plug-in width) the plug-in
    width is scaled; without, the bound itself is computed on differences of ±``sd`` in turn (exact for
    ``sd = 0``, unchanged scores), up to 2**20 pairs and extrapolated by the plug-in width beyond.
    """
    from scipy import special

    if margin <= 0:
        return math.inf
    if not (math.isfinite(sd) and math.isfinite(radius) and radius > 0):
        return math.nan
    z_power = float(special.ndtri(power))
    if ratio is None:
        high = 2
        while high <= _EXACT_UP_TO:
            if _betting_below(high, sd, radius, margin, alpha) + z_power * sd / math.sqrt(high) <= margin:
                return float(_bisect(high, lambda n: _betting_below(n, sd, radius, margin, alpha)
                                     + z_power * sd / math.sqrt(n) <= margin))
            high *= 2
        ratio = _betting_below(_EXACT_UP_TO, sd, radius, margin, alpha) / eb_half_width(_EXACT_UP_TO, sd, radius, alpha)
    if not math.isfinite(ratio):
        return math.nan

    def enough(n: int) -> bool:
        return ratio * eb_half_width(n, sd, radius, alpha) + z_power * sd / math.sqrt(n) <= margin

    high = 2
    while not enough(high):
        high *= 2
        if high > _LARGEST:
            return math.inf
    return float(_bisect(high, enough))


_EXACT_UP_TO = 2**20


def _betting_below(n: int, sd: float, radius: float, margin: float, alpha: float) -> float:
    """How far below the mean the betting bound of ``n`` differences of ±``sd`` in turn lies."""
    d = np.where(np.arange(n) % 2 == 0, min(sd, radius), -min(sd, radius))
    row = betting_margin_arrays(d[None, :], margin, alpha, radius)
    return float(row["mean"][0] - row["lower"][0])


def _bisect(high: int, enough: Callable[[int], bool]) -> int:
    """The least ``n`` in ``(high / 2, high]`` that is ``enough`` (``high`` is)."""
    low = high // 2
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if enough(middle) else (middle, high)
    return high

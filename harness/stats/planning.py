"""Sample sizes: how many paired examples a non-inferiority verdict needs at given rates (``ft-harness plan``).

Each answers the question the gate's MDE answers, solved for n instead of the margin: the number of
paired examples at which a candidate with no true change clears the tolerance ``margin`` with
``power`` at one-sided level ``alpha``, by the test the gate uses for that score type:

* 0/1 scores at discordance ψ (share of examples whose score changed): Tango's score test
  (:func:`harness.stats.paired_binary.tango_sample_size`, after Nam 1997);
* other per-example means with SD ``sd`` of the paired differences: the paired t test (exact
  noncentral t power, :func:`harness.stats.power.mde`);
* a corpus statistic whose per-example linearised differences have SD ``sd`` and whose examples
  may each move it by up to ``scale``: the score bound of :mod:`harness.stats.jackknife`.

``math.inf`` means no eval-set size will do (a zero margin); 0 means any size will.
"""

from __future__ import annotations

import math

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
    approximate = ((special.ndtri(1 - alpha) + special.ndtri(power)) * sd / margin) ** 2
    if not approximate < _LARGEST:
        return math.inf
    n = max(2, math.ceil(approximate))
    while mde(n, sd, alpha=alpha, power=power, alternative="greater") > margin:
        n += max(1, n // 100)
    while n > 2 and mde(n - 1, sd, alpha=alpha, power=power, alternative="greater") <= margin:
        n -= 1
    return float(n)


def examples_for_corpus(sd: float, scale: float, margin: float, *, alpha: float = 0.05,
                        power: float = 0.8) -> float:
    """Examples a corpus statistic needs, from the SD of its per-example linearised differences and its scale."""
    return score_bound_examples(sd, scale, margin, alpha=alpha, power=power)

"""Agreement of a judge with people on the items both labelled: Cohen's kappa (scikit-learn's
``cohen_kappa_score``) with a seeded percentile-bootstrap interval, and raw agreement with a Wilson
score interval (statsmodels' ``proportion_confint``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

#: bootstrap resamples and seed of the kappa interval
RESAMPLES = 2000
SEED = 0


def _kappa(a: Sequence[Any], b: Sequence[Any]) -> float:
    from sklearn.metrics import cohen_kappa_score

    if len(set(a) | set(b)) < 2:  # one category everywhere: chance agreement is 1, kappa undefined
        return math.nan
    return float(cohen_kappa_score(a, b))


def agreement(judge: Sequence[float], people: Sequence[float], *, confidence: float = 0.95,
              resamples: int = RESAMPLES, seed: int = SEED) -> dict[str, Any]:
    """κ and raw agreement between two raters' verdicts on the same items (with their intervals)."""
    from statsmodels.stats.proportion import proportion_confint

    if len(judge) != len(people):
        raise ValueError(f"the raters judged different numbers of items: {len(judge)} vs {len(people)}")
    n = len(judge)
    if n == 0:
        return {"n": 0, "kappa": None, "kappa_ci": None, "raw": None, "raw_ci": None}
    a, b = [float(x) for x in judge], [float(x) for x in people]
    kappa = _kappa(a, b)
    agree = sum(1 for x, y in zip(a, b, strict=True) if x == y)
    low, high = proportion_confint(agree, n, alpha=1 - confidence, method="wilson")
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n, size=(resamples, n))
    arr_a, arr_b = np.asarray(a), np.asarray(b)
    boot = [_kappa(arr_a[row].tolist(), arr_b[row].tolist()) for row in draws]
    finite = [k for k in boot if math.isfinite(k)]
    tail = (1 - confidence) / 2
    kappa_ci = ([float(np.quantile(finite, tail)), float(np.quantile(finite, 1 - tail))]
                if finite and math.isfinite(kappa) else None)
    return {"n": n, "kappa": kappa if math.isfinite(kappa) else None, "kappa_ci": kappa_ci,
            "raw": agree / n, "raw_ci": [float(low), float(high)]}

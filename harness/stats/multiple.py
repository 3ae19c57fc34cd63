"""Adjusting p-values when several metrics or suites are tested at once."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values, in the input order (reject where adjusted <= alpha).

    With p-values sorted ascending p(1) <= ... <= p(m), the adjusted value of p(i) is
    ``max over j <= i of min(1, (m - j + 1) * p(j))``; this controls the family-wise error
    rate without assuming independence.
    """
    values = np.asarray(list(p_values), dtype=float)
    if values.ndim != 1:
        raise ValueError(f"p_values must be a flat sequence, got shape {values.shape}")
    bad = np.flatnonzero(~((values >= 0) & (values <= 1)))
    if bad.size:
        raise ValueError(f"p_values[{bad[0]}] is {float(values[bad[0]])!r}: p-values must lie in [0, 1]"
                         " (resolve undefined tests before adjusting)")
    m = values.shape[0]
    if m == 0:
        return []
    order = np.argsort(values, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * values[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(scaled)
    return [float(x) for x in adjusted]

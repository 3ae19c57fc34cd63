"""One way to write numbers everywhere (reports, gate messages, step summary).

Metrics keep their own scale: BLEU / ROUGE (0–100) get 2 decimals, 0–1 metrics 3, so a
value, its delta and its CI always line up. Undefined values print as ``n/a``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from harness.metrics.registry import percent_scale

#: Metrics reported on a 0–100 scale (read from the metric registry).
PERCENT_SCALE_METRICS = percent_scale()
NA = "n/a"


def _undefined(value: float | None) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def decimals_for(metric: str) -> int:
    """Decimals used for ``metric``'s values, deltas and intervals."""
    return 2 if metric in PERCENT_SCALE_METRICS else 3


def fmt_metric(value: float | None, metric: str, *, signed: bool = False) -> str:
    """A metric value (or with ``signed`` a difference) with the metric's decimals."""
    if _undefined(value):
        return NA
    sign = "+" if signed else ""
    return f"{value:{sign}.{decimals_for(metric)}f}"


def fmt_interval(interval: Sequence[float] | None, metric: str, *, signed: bool = False) -> str:
    """``[low, high]`` with the metric's decimals."""
    if not interval or any(_undefined(v) for v in interval):
        return NA
    low, high = interval
    return f"[{fmt_metric(low, metric, signed=signed)}, {fmt_metric(high, metric, signed=signed)}]"


def fmt_p(p_value: float | None) -> str:
    """A p-value with 3 decimals, ``<0.001`` below that."""
    if p_value is None or _undefined(p_value):
        return NA
    return "<0.001" if p_value < 0.001 else f"{p_value:.3f}"


def fmt_p_clause(p_value: float | None) -> str:
    """``p = 0.012``, ``p < 0.001`` or ``p n/a``, for running text."""
    text = fmt_p(p_value)
    return f"p {text[0]} {text[1:]}" if text.startswith("<") else f"p = {text}" if text != NA else f"p {NA}"


def fmt_percent(fraction: float | None, *, signed: bool = True) -> str:
    """A relative change as a percentage with one decimal (0.052 → ``+5.2%``)."""
    if fraction is None or _undefined(fraction) or (isinstance(fraction, float) and math.isinf(fraction)):
        return NA
    return f"{fraction * 100:{'+' if signed else ''}.1f}%"


def fmt_float(value: float | None, digits: int = 4) -> str:
    """A plain quantity (loss, seconds, dollars) with ``digits`` significant digits."""
    if _undefined(value):
        return NA
    return f"{value:.{digits}g}"


def fmt_int(value: float | None) -> str:
    """A count with thousands separators."""
    if value is None or _undefined(value):
        return NA
    return f"{int(value):,}"


def shorten(text: str, limit: int = 80) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"

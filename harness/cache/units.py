"""Human units for cache maintenance: durations like ``7d`` and sizes like ``2GB``."""

from __future__ import annotations

import math
import re
from datetime import timedelta

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*$", re.IGNORECASE)
_DURATION_UNITS = {
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    "w": 604800, "week": 604800, "weeks": 604800,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "": 1, "b": 1,
    "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4,
    "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4,
    "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4,
}


def parse_duration(text: str) -> timedelta:
    """``30m``, ``12h``, ``7d``, ``2w``, ``90s`` → timedelta; ValueError names what is accepted."""
    match = _DURATION.match(text)
    unit = match.group(2).lower() if match else ""
    if not match or unit not in _DURATION_UNITS:
        raise ValueError(f"invalid duration {text!r}: expected a number and a unit, "
                         "like 90s, 30m, 12h, 7d or 2w")
    try:
        return timedelta(seconds=float(match.group(1)) * _DURATION_UNITS[unit])
    except OverflowError:
        raise ValueError(f"invalid duration {text!r}: too large") from None


def parse_size(text: str) -> int:
    """``500MB``, ``2GB``, ``1.5GiB``, ``4096`` → bytes (KB/MB/GB are powers of 1000; K/KiB of 1024)."""
    match = _SIZE.match(text)
    unit = match.group(2).lower() if match else ""
    if not match or unit not in _SIZE_UNITS:
        raise ValueError(f"invalid size {text!r}: expected a number of bytes with an optional "
                         "unit, like 500MB, 2GB, 1.5GiB or 4096")
    size = float(match.group(1)) * _SIZE_UNITS[unit]
    if not math.isfinite(size):
        raise ValueError(f"invalid size {text!r}: too large")
    return int(size)


def format_size(size: int) -> str:
    """Bytes as a short human string in powers of 1000 (``1.5 MB``)."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")  # pragma: no cover

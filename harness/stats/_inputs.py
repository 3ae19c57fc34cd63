"""Validation of the paired score vectors and options every statistical function takes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

ALTERNATIVES = ("two-sided", "greater", "less")


def check_alternative(alternative: str) -> str:
    """Return ``alternative`` or raise a ValueError listing the valid ones."""
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {', '.join(ALTERNATIVES)}; got "
                         f"{alternative!r}")
    return alternative


def check_probability(value: float, name: str) -> float:
    """Return ``value`` if it lies strictly between 0 and 1, else raise a ValueError."""
    if not 0.0 < float(value) < 1.0:
        raise ValueError(f"{name} must be strictly between 0 and 1, got {value!r}")
    return float(value)


def as_scores(values: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    """A 1-D float array of finite scores, or a ValueError naming the offending index."""
    if isinstance(values, (str, bytes)):
        raise ValueError(f"{name} must be a sequence of numbers, got a string")
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must hold numbers only: {error}") from None
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional (one score per example), got shape "
                         f"{array.shape}")
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise ValueError(f"{name}[{bad[0]}] is {float(array[bad[0]])!r}: scores must be finite numbers "
                         f"({bad.size} non-finite value(s))")
    return array


def paired(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray,
           names: tuple[str, str] = ("a", "b")) -> tuple[np.ndarray, np.ndarray]:
    """Two equally long, non-empty score arrays (one score per example, same order)."""
    first, second = as_scores(a, names[0]), as_scores(b, names[1])
    if first.shape[0] != second.shape[0]:
        raise ValueError(f"paired scores must have the same length: {names[0]} has "
                         f"{first.shape[0]}, {names[1]} has {second.shape[0]}")
    if first.shape[0] == 0:
        raise ValueError(f"{names[0]} and {names[1]} are empty: a paired comparison needs at "
                         "least one example")
    return first, second


def is_binary(values: np.ndarray) -> bool:
    """True when every value is 0 or 1."""
    return bool(np.all((values == 0) | (values == 1)))


def check_binary(values: np.ndarray, name: str) -> np.ndarray:
    """Return ``values`` as 0/1 integers, or raise a ValueError naming the first other value."""
    bad = np.flatnonzero((values != 0) & (values != 1))
    if bad.size:
        raise ValueError(f"{name}[{bad[0]}] is {float(values[bad[0]])!r}: binary scores must be 0 or 1")
    return values.astype(np.int64)

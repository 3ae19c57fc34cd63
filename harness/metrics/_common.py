"""Input checks, version lookups and result helpers shared by the metric modules."""

from __future__ import annotations

import math
from collections.abc import Sequence, Sized
from functools import cache
from importlib import metadata


class MetricWarning(UserWarning):
    """A metric was computed, but the number may not mean what the caller expects."""


def check_same_length(predictions: Sequence[object], references: Sequence[object],
                      *, names: tuple[str, str] = ("predictions", "references")) -> int:
    """Return the common length, or raise a ValueError naming both lengths."""
    n_pred, n_ref = len(predictions), len(references)
    if n_pred != n_ref:
        raise ValueError(f"{names[0]} and {names[1]} differ in length: "
                         f"{len(predictions)} {names[0]} vs {len(references)} {names[1]}")
    if n_pred == 0:
        raise ValueError(f"no examples: {names[0]} and {names[1]} are empty "
                         "(a metric over zero examples is undefined)")
    return n_pred


def check_strings(values: Sequence[object], name: str) -> list[str]:
    """Return ``values`` as a list, raising a ValueError naming the first non-string entry."""
    if isinstance(values, str):
        raise ValueError(f"{name} must be a sequence of strings, got a single string")
    out: list[str] = []
    for index, value in enumerate(values):
        if not isinstance(value, str):
            raise ValueError(f"{name}[{index}] must be a string, got {type(value).__name__}: "
                             f"{value!r}")
        out.append(value)
    return out


def check_not_empty(values: Sized, name: str) -> None:
    """Raise a ValueError when there are no examples."""
    if len(values) == 0:
        raise ValueError(f"no examples: {name} is empty (a metric over zero examples is undefined)")


def normalize_references(references: Sequence[str] | Sequence[Sequence[str]],
                         ) -> list[list[str]]:
    """Return one list of reference strings per example.

    ``references`` is either one string per example or one sequence of strings per example
    (several references for that example). Each example needs at least one reference.
    """
    if isinstance(references, str):
        raise ValueError("references must be a sequence (one entry per example), got a single string")
    per_example: list[list[str]] = []
    for index, entry in enumerate(references):
        if isinstance(entry, str):
            per_example.append([entry])
            continue
        if not isinstance(entry, Sequence):
            raise ValueError(f"references[{index}] must be a string or a sequence of strings, "
                             f"got {type(entry).__name__}")
        refs = list(entry)
        if not refs:
            raise ValueError(f"references[{index}] is an empty list: each example needs at least "
                             "one reference")
        for j, ref in enumerate(refs):
            if not isinstance(ref, str):
                raise ValueError(f"references[{index}][{j}] must be a string, got "
                                 f"{type(ref).__name__}: {ref!r}")
        per_example.append(refs)
    return per_example


def references_count_label(per_example: Sequence[Sequence[str]]) -> str:
    """The reference count as a signature field: the count when constant, else ``var``."""
    counts = {len(refs) for refs in per_example}
    return str(counts.pop()) if len(counts) == 1 else "var"


@cache
def library_version(distribution: str) -> str:
    """The installed version of ``distribution`` (for signatures), or ``unknown``."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "unknown"


def mean(values: Sequence[float]) -> float:
    """The arithmetic mean computed with ``math.fsum`` (exact summation, order independent)."""
    return math.fsum(values) / len(values)


def yes_no(flag: bool) -> str:
    """Format a boolean signature field the way sacrebleu does."""
    return "yes" if flag else "no"

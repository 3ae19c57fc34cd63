"""Exact match against references and regular-expression checks, per example."""

from __future__ import annotations

import re
from collections.abc import Sequence

from harness.metrics._common import (
    check_not_empty,
    check_same_length,
    check_strings,
    normalize_references,
    references_count_label,
    yes_no,
)
from harness.metrics.per_example import PerExampleResult


def _normalize(text: str, *, strip: bool, ignore_case: bool) -> str:
    if strip:
        text = text.strip()
    if ignore_case:
        text = text.casefold()
    return text


def exact_match(predictions: Sequence[str], references: Sequence[str] | Sequence[Sequence[str]],
                *, strip: bool = True, ignore_case: bool = False) -> PerExampleResult:
    """1 where the prediction equals a reference (any of them, when several), else 0.

    ``strip`` removes surrounding whitespace from both sides first; ``ignore_case``
    compares casefolded text.
    """
    hypotheses = check_strings(predictions, "predictions")
    check_same_length(hypotheses, references)
    per_example = normalize_references(references)
    scores: list[int] = []
    details: list[str] = []
    for prediction, refs in zip(hypotheses, per_example, strict=True):
        wanted = {_normalize(ref, strip=strip, ignore_case=ignore_case) for ref in refs}
        hit = _normalize(prediction, strip=strip, ignore_case=ignore_case) in wanted
        scores.append(int(hit))
        details.append("" if hit else "differs from every reference" if len(refs) > 1
                       else "differs from the reference")
    signature = (f"exact_match|strip:{yes_no(strip)}|case:{'folded' if ignore_case else 'mixed'}"
                 f"|nrefs:{references_count_label(per_example)}")
    return PerExampleResult(name="exact_match", scores=scores, details=details,
                            signature=signature)


def regex_match(predictions: Sequence[str], pattern: str, *, mode: str = "fullmatch",
                flags: int = 0) -> PerExampleResult:
    """1 where the prediction matches ``pattern`` (``re.fullmatch`` or ``re.search``), else 0."""
    hypotheses = check_strings(predictions, "predictions")
    check_not_empty(hypotheses, "predictions")
    if mode not in ("fullmatch", "search"):
        raise ValueError(f"mode must be 'fullmatch' or 'search', got {mode!r}")
    try:
        compiled = re.compile(pattern, flags)
    except re.error as error:
        raise ValueError(f"invalid regular expression {pattern!r}: {error}") from None
    matcher = compiled.fullmatch if mode == "fullmatch" else compiled.search
    scores = [int(matcher(text) is not None) for text in hypotheses]
    details = ["" if score else f"does not match {pattern!r} ({mode})" for score in scores]
    signature = f"regex_match|mode:{mode}|flags:{int(flags)}|pattern:{pattern}"
    return PerExampleResult(name="regex_match", scores=scores, details=details,
                            signature=signature)

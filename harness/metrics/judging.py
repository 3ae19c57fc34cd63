"""Model-graded metrics, the pure part: judge prompts, reading verdicts, combining both orders of a
pairwise judgment, G-Eval's expected rating, and the judge's bias figures.

Pairwise judgments follow Zheng et al. (2023), "Judging LLM-as-a-Judge with MT-Bench and Chatbot
Arena" (NeurIPS Datasets and Benchmarks), section 3.4: each pair is judged in both orders and a win
counts only when it survives the swap, otherwise it is a tie. Pointwise ratings weighted by the
judge's token probabilities follow Liu et al. (2023), "G-Eval: NLG Evaluation using GPT-4 with
Better Human Alignment" (EMNLP), section 2: the score is the sum over the scale of ``p(r) · r``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: one verdict of a pairwise judgment, from the first-shown answer's side
FIRST, SECOND, TIE = "A", "B", "tie"
PASS_FAIL = "pass_fail"

JUDGE_SYSTEM = "You are a careful, impartial judge of answers written by AI assistants."


@dataclass(frozen=True)
class Scale:
    """A pointwise judge's scale: whole numbers ``low``..``high``, or pass / fail (1 / 0)."""

    low: int = 1
    high: int = 5
    pass_fail: bool = False

    @property
    def values(self) -> tuple[int, ...]:
        return (0, 1) if self.pass_fail else tuple(range(self.low, self.high + 1))

    def describe(self) -> str:
        return PASS_FAIL if self.pass_fail else f"{self.low}-{self.high}"

    def instruction(self) -> str:
        if self.pass_fail:
            return "Reply with one word: PASS if the answer meets the criteria, FAIL otherwise."
        return f"Rate the answer on a scale of {self.low} to {self.high}. Reply with the number only."


def pairwise_messages(rubric: str, question: str, first: str, second: str) -> list[dict[str, str]]:
    """The judge prompt for one order of a pair (``first`` is shown as Answer A)."""
    user = (f"{rubric.strip()}\n\n[Question]\n{question}\n\n[Answer A]\n{first}\n\n[Answer B]\n{second}\n\n"
            "Which answer is better? Reply with exactly one of: A, B, tie.")
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user}]


def pointwise_messages(rubric: str, question: str, answer: str, scale: Scale,
                       reference: str | None = None) -> list[dict[str, str]]:
    """The judge prompt rating one answer (against the reference answer when one is given)."""
    shown = f"\n\n[Reference answer]\n{reference}" if reference is not None else ""
    user = (f"{rubric.strip()}\n\n[Question]\n{question}{shown}\n\n[Answer]\n{answer}\n\n{scale.instruction()}")
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user}]


_PAIR = re.compile(r"^\W*(?:\[\[)?(A|B|tie)(?:\]\])?\b", re.IGNORECASE)
_NUMBER = re.compile(r"^\W*(-?\d+(?:\.\d+)?)")
_PASS = re.compile(r"^\W*(pass|fail)\b", re.IGNORECASE)


def parse_pairwise(text: str) -> str | None:
    """``A``, ``B`` or ``tie`` from the start of a judge's reply; None when it says something else."""
    match = _PAIR.match(text or "")
    if match is None:
        return None
    word = match.group(1)
    return TIE if word.lower() == "tie" else word.upper()


def parse_rating(text: str, scale: Scale) -> float | None:
    """The rating at the start of a reply, if it is on the scale; None otherwise."""
    if scale.pass_fail:
        match = _PASS.match(text or "")
        return None if match is None else float(match.group(1).lower() == "pass")
    match = _NUMBER.match(text or "")
    if match is None:
        return None
    value = float(match.group(1))
    return value if value.is_integer() and scale.low <= value <= scale.high else None


def expected_rating(top_logprobs: Sequence[Mapping[str, Any]], scale: Scale) -> float | None:
    """G-Eval: the probability-weighted rating over the scale's tokens among the first token's top
    log-probabilities (renormalised over those tokens); None when no scale token is among them."""
    weights: dict[float, float] = {}
    for entry in top_logprobs:
        rating = parse_rating(str(entry.get("token", "")).strip(), scale)
        logprob = entry.get("logprob")
        if rating is None or not isinstance(logprob, (int, float)) or not math.isfinite(logprob):
            continue
        weights[rating] = weights.get(rating, 0.0) + math.exp(logprob)
    total = math.fsum(weights.values())
    if total <= 0:
        return None
    return math.fsum(r * w for r, w in weights.items()) / total


def swap_verdict(first_order: str | None, second_order: str | None) -> tuple[float, bool | None]:
    """The candidate's score from both orders (+1 win, −1 loss, 0 tie) and whether the two orders
    flipped (preferred the same *position*, so different answers); flip is None when either is unread.

    ``first_order`` judged (candidate, other); ``second_order`` judged (other, candidate).
    """
    if first_order is None or second_order is None:
        return 0.0, None  # a win cannot survive a swap it was not seen to survive
    as_candidate = {FIRST: 1, SECOND: -1, TIE: 0}[first_order]
    swapped = {FIRST: -1, SECOND: 1, TIE: 0}[second_order]
    flipped = as_candidate != swapped
    return (float(as_candidate) if as_candidate == swapped else 0.0), flipped


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rank correlation (scipy), None when undefined (fewer than 3 points or a constant)."""
    from scipy.stats import spearmanr

    if len(x) < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return None
    return float(spearmanr(x, y).statistic)


def length_bias(verdicts: Sequence[float], length_differences: Sequence[float]) -> dict[str, Any]:
    """How often the longer answer won among decided pairs of unequal length, and the Spearman
    correlation of the verdict with the length difference (candidate minus other, in words)."""
    decided = [(v, d) for v, d in zip(verdicts, length_differences, strict=True) if v != 0 and d != 0]
    longer = sum(1 for v, d in decided if (v > 0) == (d > 0))
    return {"decided_unequal": len(decided), "longer_wins": (longer / len(decided)) if decided else None,
            "correlation": spearman(list(verdicts), list(length_differences))}


def self_consistency(samples: Sequence[Sequence[float]]) -> float | None:
    """Share of items whose ``k`` samples all agree (None with one sample per item)."""
    rows = [row for row in samples if len(row) > 1]
    if not rows:
        return None
    return sum(1 for row in rows if len(set(row)) == 1) / len(rows)

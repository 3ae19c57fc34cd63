"""The report's "Judges" section: per candidate and judge, the verdict counts and the judge's bias
figures (position flips, self-consistency, unreadable replies, length bias), its calls and cost,
and its agreement with people where labels exist. A view of ``EvalResult.details["judges"]``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from harness.fmt import NA
from harness.report.tables import markdown_table
from harness.results import EvalResult


def _share(value: Any) -> str:
    return NA if value is None else f"{100 * float(value):.1f}%"


def _number(value: Any, digits: int = 2) -> str:
    return NA if value is None else f"{float(value):.{digits}f}"


def _agreement(figures: Mapping[str, Any]) -> str:
    agreement = figures.get("agreement")
    if not agreement:
        return NA
    low, high = agreement.get("kappa_ci") or (None, None)
    text = (f"κ {_number(agreement.get('kappa'))} [{_number(low)}, {_number(high)}], raw "
            f"{_share(agreement.get('raw'))} (n {agreement.get('n', 0)})")
    return text + (" **untrusted**" if agreement.get("untrusted") else "")


def judge_rows(results: Sequence[EvalResult]) -> list[list[str]]:
    """One row per (candidate, judge)."""
    rows = []
    for result in results:
        for name, figures in sorted((result.details.get("judges") or {}).items()):
            usage = figures.get("usage") or {}
            length = figures.get("length_bias") or {}
            verdicts = (f"{figures['wins']} / {figures['ties']} / {figures['losses']}" if "wins" in figures else NA)
            cost = usage.get("cost_usd")
            rows.append([
                result.candidate, f"`{figures.get('metric', name)}`", figures.get("mode", NA),
                f"{figures.get('model', NA)}" + (f" vs {str(figures['against']).split(':')[0]}"
                                                 if figures.get("against") else ""),
                verdicts, _share(figures.get("position_flip_rate")), _share(figures.get("self_consistency")),
                f"{figures.get('unparseable', 0)} of {figures.get('judgments', 0)} "
                f"({_share(figures.get('unparseable_share'))})",
                _share(length.get("longer_wins")), _number(length.get("correlation")),
                f"{usage.get('calls', 0)} ({usage.get('cached_calls', 0)} cached)",
                f"{int(usage.get('prompt_tokens', 0)):,} / {int(usage.get('completion_tokens', 0)):,}",
                NA if cost is None else f"${cost:.4f}", _agreement(figures),
            ])
    return rows


def judges_section(results: Sequence[EvalResult]) -> str:
    """The markdown section, or "" when no candidate was judged."""
    rows = judge_rows(results)
    if not rows:
        return ""
    headers = ["candidate", "metric", "mode", "judge", "wins / ties / losses", "position flips",
               "self-consistency", "unparseable", "longer answer wins", "verdict ~ length (Spearman)",
               "calls", "tokens in / out", "cost", "agreement with people"]
    notes = ("Pairwise judges judge every pair in both orders: a win counts only when it survives the swap "
             "(otherwise a tie), so each example scores +1 / 0 / −1. *Position flips*: share of pairs whose two "
             "orders disagreed (the judge preferred a position, not an answer). *Self-consistency*: share of items "
             "whose samples all agree (n/a with one sample). *Unparseable* judgments are never scored; above "
             "the judge's `max_unparseable` the metric is an error. *Longer answer wins*: among decided "
             "one-order verdicts between answers of unequal length (words). Cost: every call's tokens at the "
             "judge model's price (n/a when unpriced); cached calls cost nothing again.")
    return f"## Judges\n\n{markdown_table(headers, rows)}\n\n{notes}\n\n"

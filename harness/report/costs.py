"""Tokens and dollars per 1,000 requests for candidates that report token usage.

Prices come from :class:`harness.cost.PricingTable` for the model id in
``EvalResult.details["model"]`` (set by API-served candidates); without a known price only
token counts are shown.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.cost import PRICES_AS_OF, PricingTable, usage_cost
from harness.report.numbers import NA, fmt_float
from harness.report.tables import markdown_table
from harness.results import EvalResult

PER = 1000


def cost_rows(results: Sequence[EvalResult], pricing: PricingTable | None = None) -> list[list[str]]:
    """One row per candidate with token totals: requests, tokens and cost per 1,000 requests."""
    table = pricing or PricingTable()
    rows = []
    for r in results:
        prompt, completion = r.usage.get("prompt_tokens", 0.0), r.usage.get("completion_tokens", 0.0)
        if not (prompt or completion):
            continue
        requests = r.usage.get("requests") or r.n
        model = str(r.details.get("model") or "")
        price = table.inference_price(model) if model else None
        cost = NA
        if price is not None:
            cost = f"${usage_cost(prompt, completion, price) / requests * PER:.4f}"
        rows.append([r.candidate, model or NA, f"{int(requests):,}", fmt_float(prompt / requests * PER, 6),
                     fmt_float(completion / requests * PER, 6), cost])
    return rows


def cost_section(results: Sequence[EvalResult], pricing: PricingTable | None = None) -> str:
    """The markdown section, or "" when no candidate counted tokens."""
    rows = cost_rows(results, pricing)
    if not rows:
        return ""
    headers = ["candidate", "model", "requests", "prompt tokens / 1k req", "completion tokens / 1k req",
               "cost / 1k req"]
    as_of = getattr(pricing, "as_of", PRICES_AS_OF)
    return (f"## Cost\n\n{markdown_table(headers, rows)}\n\nPrices per 1M tokens as of {as_of} "
            "(harness.cost); n/a where the model has no listed price.\n\n")

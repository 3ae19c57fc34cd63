"""Tokens and dollars per 1,000 requests for candidates that report token usage.

Prices come from :class:`harness.cost.PricingTable` (the spec's ``[harness.pricing]`` over the
built-in table) for the model id in ``EvalResult.details["model"]`` (set by API-served
candidates); a model run here is priced by the ``local`` entry, as the "Fine-tune or prompt?"
section prices it. Without a known price only token counts are shown.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from harness.cost import PRICES_AS_OF, PricingTable, break_even_requests, usage_cost
from harness.fmt import NA, fmt_float
from harness.report.tables import markdown_table
from harness.results import EvalResult

PER = 1000
LOCAL_PRICE = "local"  # the pricing entry that prices tokens of a model run here


def pricing_table(settings: Mapping[str, Any] | None) -> PricingTable:
    """The run's pricing: the spec's ``[harness.pricing]`` (``state.settings["pricing"]``) over the built-in table."""
    raw = dict((settings or {}).get("pricing") or {})
    models = raw.get("models", {k: v for k, v in raw.items() if k != "as_of"})
    return PricingTable().with_overrides(models, as_of=raw.get("as_of"))


def price_of(result: EvalResult, table: PricingTable) -> tuple[Any, str]:
    """The inference price of ``result``'s model and the name it is priced as (None, "" when unpriced)."""
    model = str(result.details.get("model") or "")
    price = table.inference_price(model) if model else table.prices.get(LOCAL_PRICE)
    return price, (model or LOCAL_PRICE) if price is not None else model


def cost_rows(results: Sequence[EvalResult], pricing: PricingTable | None = None) -> list[list[str]]:
    """One row per candidate with token totals: requests, tokens and cost per 1,000 requests."""
    table = pricing or PricingTable()
    rows = []
    for r in results:
        prompt, completion = r.usage.get("prompt_tokens", 0.0), r.usage.get("completion_tokens", 0.0)
        if not (prompt or completion):
            continue
        requests = r.usage.get("requests") or r.n
        price, model = price_of(r, table)
        cost = NA
        if price is not None:
            cost = f"${usage_cost(prompt, completion, price) / requests * PER:.4f}"
        rows.append([r.candidate, model or NA, f"{int(requests):,}", fmt_float(prompt / requests * PER, 6),
                     fmt_float(completion / requests * PER, 6), cost])
    return rows


def _cost_per_request(result: EvalResult, table: PricingTable) -> float | None:
    price, _ = price_of(result, table)
    requests = result.usage.get("requests") or result.n
    if price is None or not requests:
        return None
    return usage_cost(result.usage.get("prompt_tokens", 0.0), result.usage.get("completion_tokens", 0.0),
                      price) / requests


def break_even_rows(results: Sequence[EvalResult], pricing: PricingTable | None = None) -> list[list[str]]:
    """Prompting vs fine-tuning: for each fine-tune with a billed training cost and each priced
    candidate that was not trained, the number of requests after which the fine-tune pays off."""
    table = pricing or PricingTable()
    tuned = [r for r in results if r.training and r.training.get("cost_usd") is not None]
    prompted = [r for r in results if not r.training]
    rows = []
    for f in tuned:
        f_cost = _cost_per_request(f, table)
        for p in prompted:
            p_cost = _cost_per_request(p, table)
            if f_cost is None or p_cost is None:
                continue
            requests = break_even_requests(float((f.training or {})["cost_usd"]), p_cost, f_cost)
            shown = "never" if math.isinf(requests) else f"{math.ceil(requests):,}"
            rows.append([f.candidate, p.candidate, f"${(f.training or {})['cost_usd']:.4f}", f"${p_cost * PER:.4f}",
                         f"${f_cost * PER:.4f}", shown])
    return rows


def judge_cost_rows(results: Sequence[EvalResult]) -> list[list[str]]:
    """One row per (candidate, judge): the judge's calls, tokens and their price (recorded by the run)."""
    rows = []
    for r in results:
        for name, figures in sorted((r.details.get("judges") or {}).items()):
            usage = figures.get("usage") or {}
            cost = usage.get("cost_usd")
            new = usage.get("new_cost_usd")
            rows.append([r.candidate, f"judge:{name}", str(figures.get("model", NA)),
                         f"{int(usage.get('calls', 0)):,} ({int(usage.get('cached_calls', 0)):,} cached)",
                         f"{int(usage.get('prompt_tokens', 0)):,}", f"{int(usage.get('completion_tokens', 0)):,}",
                         NA if cost is None else f"${cost:.4f}", NA if new is None else f"${new:.4f}"])
    return rows


def cost_section(results: Sequence[EvalResult], pricing: PricingTable | None = None) -> str:
    """The markdown section, or "" when no candidate or judge counted tokens."""
    rows = cost_rows(results, pricing)
    judged = judge_cost_rows(results)
    if not rows and not judged:
        return ""
    headers = ["candidate", "model", "requests", "prompt tokens / 1k req", "completion tokens / 1k req",
               "cost / 1k req"]
    as_of = getattr(pricing, "as_of", PRICES_AS_OF)
    text = "## Cost\n\n"
    if rows:
        text += (f"{markdown_table(headers, rows)}\n\nPrices per 1M tokens as of {as_of} "
                 "(harness.cost and [harness.pricing]; `local` prices a model run here); n/a where the model has "
                 "no listed price.\n\n")
    if judged:
        headers = ["candidate", "judge", "judge model", "calls", "prompt tokens", "completion tokens",
                   "cost (all calls)", "cost (this run)"]
        text += (f"### Judges\n\n{markdown_table(headers, judged)}\n\nEvery judgment's tokens at the judge "
                 "model's price ([harness.pricing] or the built-in table; n/a when unpriced); cached judgments "
                 "cost nothing this run. `--ft-openai-max-cost` refuses a judge's new calls estimated above it.\n\n")
    even = break_even_rows(results, pricing)
    if even:
        headers = ["fine-tune", "vs prompting", "training cost", "prompted / 1k req", "fine-tuned / 1k req",
                   "break-even (requests)"]
        text += (f"### Prompting vs fine-tuning\n\n{markdown_table(headers, even)}\n\nRequests after which the "
                 "one-off training cost is paid back by cheaper requests (shorter prompts, observed usage).\n\n")
    return text

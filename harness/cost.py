"""Money: a pricing table, the cost of a candidate's usage, and prompting-vs-fine-tuning break-even.

Everything here is pure: token counts and prices in, dollars out. Prices are US dollars per
one million tokens. The shipped defaults are OpenAI's public list prices as of
:data:`PRICES_AS_OF`; prices change, so every function takes a :class:`PricingTable` and a
table can be overridden from a JSON file (see :meth:`PricingTable.from_json`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Protocol

PER_MILLION = 1_000_000
#: The date the default prices were taken from OpenAI's pricing page.
PRICES_AS_OF = "2025-06-01"


@dataclass(frozen=True)
class ModelPrice:
    """Dollars per 1M tokens for one model; ``None`` where the provider has no such price.

    ``fine_tuned_*`` are the inference prices of a model fine-tuned from this one (OpenAI
    charges more to run a fine-tune than its base).
    """

    input_per_1m: float
    output_per_1m: float
    training_per_1m: float | None = None
    fine_tuned_input_per_1m: float | None = None
    fine_tuned_output_per_1m: float | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None and (not math.isfinite(value) or value < 0):
                raise ValueError(f"price {f.name} must be a finite number >= 0, got {value!r}")

    def fine_tuned(self) -> ModelPrice | None:
        """The inference price of a fine-tune of this model (None when not published)."""
        if self.fine_tuned_input_per_1m is None or self.fine_tuned_output_per_1m is None:
            return None
        return ModelPrice(self.fine_tuned_input_per_1m, self.fine_tuned_output_per_1m)


DEFAULT_PRICES: dict[str, ModelPrice] = {
    "gpt-4.1": ModelPrice(2.00, 8.00, 25.00, 3.00, 12.00),
    "gpt-4.1-mini": ModelPrice(0.40, 1.60, 5.00, 0.80, 3.20),
    "gpt-4.1-nano": ModelPrice(0.10, 0.40, 1.50, 0.20, 0.80),
    "gpt-4o": ModelPrice(2.50, 10.00, 25.00, 3.75, 15.00),
    "gpt-4o-mini": ModelPrice(0.15, 0.60, 3.00, 0.30, 1.20),
    "gpt-3.5-turbo": ModelPrice(0.50, 1.50, 8.00, 3.00, 6.00),
}

# A dated snapshot of a listed model: gpt-4o-mini-2024-07-18, gpt-3.5-turbo-0125.
_SNAPSHOT_SUFFIX = re.compile(r"^-(\d{4}-\d{2}-\d{2}|\d{4})$")


def base_of_fine_tuned(model: str) -> str | None:
    """The base model of an OpenAI-style fine-tuned id (``ft:BASE:...``), else None."""
    if not model.startswith("ft:"):
        return None
    parts = model.split(":")
    return parts[1] if len(parts) > 1 and parts[1] else None


@dataclass(frozen=True)
class PricingTable:
    """Model id → :class:`ModelPrice`, with the date the prices were read."""

    prices: Mapping[str, ModelPrice] = field(default_factory=lambda: dict(DEFAULT_PRICES))
    as_of: str = PRICES_AS_OF

    def base_price(self, model: str) -> ModelPrice | None:
        """Price of a (non fine-tuned) model: exact id, else the listed model it is a snapshot of."""
        if model in self.prices:
            return self.prices[model]
        candidates = [name for name in self.prices
                      if model.startswith(name) and _SNAPSHOT_SUFFIX.match(model[len(name):])]
        return self.prices[max(candidates, key=len)] if candidates else None

    def inference_price(self, model: str) -> ModelPrice | None:
        """What running ``model`` costs; ``ft:BASE:...`` ids get BASE's fine-tuned prices."""
        base = base_of_fine_tuned(model)
        if base is None:
            return self.base_price(model)
        if model in self.prices:
            return self.prices[model]
        price = self.base_price(base)
        return price.fine_tuned() if price else None

    def training_price(self, model: str) -> float | None:
        """Dollars per 1M training tokens for fine-tuning ``model`` (None when unknown)."""
        price = self.base_price(model)
        return price.training_per_1m if price else None

    def with_overrides(self, overrides: Mapping[str, ModelPrice | Mapping[str, Any]],
                       *, as_of: str | None = None) -> PricingTable:
        """A new table where ``overrides`` replace or extend entries (a mapping updates fields)."""
        merged = dict(self.prices)
        for name, value in overrides.items():
            if isinstance(value, ModelPrice):
                merged[name] = value
                continue
            unknown = set(value) - {f.name for f in fields(ModelPrice)}
            if unknown:
                raise ValueError(f"pricing entry {name!r}: unknown field(s) {sorted(unknown)}")
            if name in merged:
                merged[name] = replace(merged[name], **value)
            else:
                merged[name] = ModelPrice(**value)
        return PricingTable(merged, as_of or self.as_of)

    @classmethod
    def from_json(cls, path: str | Path, *, base: PricingTable | None = None) -> PricingTable:
        """Defaults overridden by a JSON file ``{"as_of": "...", "models": {id: {field: $}}}``."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
            raise ValueError(f"{path}: expected an object with a 'models' object")
        table = base or cls()
        try:
            return table.with_overrides(data["models"], as_of=data.get("as_of"))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}: {exc}") from None


class Usage(Protocol):
    """Anything with token counts (a :class:`harness.protocol.Generation`)."""

    prompt_tokens: int
    completion_tokens: int


def usage_cost(prompt_tokens: float, completion_tokens: float, price: ModelPrice) -> float:
    """Dollars for one request (or a total) with these input and output token counts."""
    return (prompt_tokens * price.input_per_1m + completion_tokens * price.output_per_1m) / PER_MILLION


def training_cost(training_tokens: float, n_epochs: float, price_per_1m: float) -> float:
    """Dollars to fine-tune: tokens in the training file × epochs × price per 1M training tokens."""
    if training_tokens < 0 or n_epochs < 0:
        raise ValueError("training tokens and epochs must be >= 0")
    return training_tokens * n_epochs * price_per_1m / PER_MILLION


@dataclass(frozen=True)
class UsageCost:
    """Observed usage of one candidate and what it cost."""

    requests: int
    prompt_tokens: int
    completion_tokens: int
    total_cost: float
    cost_per_1k_requests: float


def cost_of_usage(usages: Iterable[Usage], price: ModelPrice) -> UsageCost:
    """Total cost and cost per 1,000 requests from per-request token counts."""
    requests = prompt = completion = 0
    for usage in usages:
        requests += 1
        prompt += int(usage.prompt_tokens)
        completion += int(usage.completion_tokens)
    total = usage_cost(prompt, completion, price)
    per_1k = total / requests * 1000 if requests else 0.0
    return UsageCost(requests, prompt, completion, total, per_1k)


def cost_for_model(model: str, usages: Iterable[Usage], table: PricingTable) -> UsageCost | None:
    """A candidate's observed cost at ``model``'s inference price (None when it has no price)."""
    price = table.inference_price(model)
    return cost_of_usage(usages, price) if price is not None else None


def break_even_requests(one_off_cost: float, prompted_cost_per_request: float,
                        fine_tuned_cost_per_request: float) -> float:
    """Requests after which a fine-tune (one-off cost, cheaper requests) beats prompting.

    ``math.inf`` when a fine-tuned request is not cheaper than a prompted one; 0 when training
    is free and requests are cheaper.
    """
    if one_off_cost < 0 or prompted_cost_per_request < 0 or fine_tuned_cost_per_request < 0:
        raise ValueError("costs must be >= 0")
    saving = prompted_cost_per_request - fine_tuned_cost_per_request
    # A saving within float rounding of the prices is no saving (equal costs computed two ways).
    if saving <= 1e-9 * max(prompted_cost_per_request, fine_tuned_cost_per_request):
        return math.inf
    return one_off_cost / saving


@dataclass(frozen=True)
class BreakEven:
    """Prompting a base model with a long few-shot prompt vs. a fine-tune with a short prompt."""

    training_cost: float
    prompted_cost_per_request: float
    fine_tuned_cost_per_request: float
    break_even_requests: float  # math.inf: the fine-tune never pays off

    def total_cost(self, requests: float) -> tuple[float, float]:
        """(prompting total, fine-tuning total) after ``requests`` requests."""
        return (requests * self.prompted_cost_per_request,
                self.training_cost + requests * self.fine_tuned_cost_per_request)


def prompting_vs_fine_tuning(*, base_price: ModelPrice, fine_tuned_price: ModelPrice,
                             training_price_per_1m: float, training_tokens: float, n_epochs: float,
                             prompted_input_tokens: float, fine_tuned_input_tokens: float,
                             output_tokens: float) -> BreakEven:
    """The fine-tuning guide's break-even: when does the one-off training cost pay for itself?

    A prompted request sends ``prompted_input_tokens`` (instructions + few-shot examples) to
    the base model; a fine-tuned request sends only ``fine_tuned_input_tokens`` but pays the
    fine-tuned model's higher per-token prices.
    """
    one_off = training_cost(training_tokens, n_epochs, training_price_per_1m)
    prompted = usage_cost(prompted_input_tokens, output_tokens, base_price)
    tuned = usage_cost(fine_tuned_input_tokens, output_tokens, fine_tuned_price)
    return BreakEven(one_off, prompted, tuned, break_even_requests(one_off, prompted, tuned))


SECONDS_PER_HOUR = 3600.0
FINE_TUNE, PROMPT, INCONCLUSIVE = "fine-tune", "prompt", "inconclusive"


def compute_cost(runtime_s: float, price_per_hour: float) -> float:
    """Dollars for ``runtime_s`` seconds of compute at ``price_per_hour``."""
    if runtime_s < 0 or price_per_hour < 0:
        raise ValueError("runtime and price must be >= 0")
    return runtime_s / SECONDS_PER_HOUR * price_per_hour


@dataclass(frozen=True)
class Decision:
    """Fine-tune or prompt: the recommendation, why, and the break-even it rests on."""

    recommendation: str  # FINE_TUNE | PROMPT | INCONCLUSIVE
    reason: str
    significant: bool
    break_even_requests: float | None  # None: a cost is unknown; math.inf: never pays back


def _n(value: float) -> str:
    return "never" if math.isinf(value) else f"{math.ceil(value):,}"


def decide(*, difference: float, ci: tuple[float, float], p_value: float, alpha: float, mde: float,
           meaningful: float, prompted_cost_per_request: float | None,
           fine_tuned_cost_per_request: float | None, training_cost: float | None,
           expected_monthly_requests: int | None) -> Decision:
    """The recommendation that follows from a paired comparison (``difference`` = fine-tuned −
    prompted on the gated metric, higher is better) and the costs.

    * fine-tune significantly better (p < alpha) and its training cost paid back within the
      expected monthly volume → fine-tune; paid back later (or never) → prompt;
    * prompted significantly better → prompt;
    * not significant: when the eval set could not have detected a difference that matters
      (the CI straddles 0 and the MDE exceeds ``meaningful``) → inconclusive, else → prompt.
    """
    significant = math.isfinite(p_value) and p_value < alpha
    costs = (prompted_cost_per_request, fine_tuned_cost_per_request, training_cost)
    even = None if any(c is None for c in costs) else break_even_requests(
        training_cost, prompted_cost_per_request, fine_tuned_cost_per_request)  # type: ignore[arg-type]
    p_text = "p < 0.001" if p_value < 0.001 else f"p = {p_value:.3g}"
    shown = f"{difference:+.4g} (95% CI [{ci[0]:+.4g}, {ci[1]:+.4g}], {p_text})"
    if significant and difference > 0:
        if even is None:
            return Decision(FINE_TUNE, f"the fine-tune is significantly better, {shown}; its cost is not priced "
                                       "(no price for a candidate or no training price), so no break-even", True, None)
        if expected_monthly_requests is None:
            return Decision(FINE_TUNE, f"the fine-tune is significantly better, {shown}; it pays back its training "
                                       f"after {_n(even)} requests (set expected_monthly_requests to weigh that)",
                            True, even)
        if even <= expected_monthly_requests:
            return Decision(FINE_TUNE, f"the fine-tune is significantly better, {shown}, and pays back its training "
                                       f"after {_n(even)} requests, within the expected "
                                       f"{expected_monthly_requests:,} a month", True, even)
        if math.isinf(even):
            return Decision(PROMPT, f"the fine-tune is significantly better, {shown}, but never pays back its "
                                    "training (a request costs it no less than the other side): prompt unless the "
                                    "gain is worth the cost", True, even)
        return Decision(PROMPT, f"the fine-tune is significantly better, {shown}, but pays back its training only "
                                f"after {_n(even)} requests, more than the expected {expected_monthly_requests:,} a "
                                "month: prompt unless the gain is worth the cost", True, even)
    if significant:
        return Decision(PROMPT, f"the prompted candidate is significantly better, {shown}", True, even)
    if ci[0] <= 0 <= ci[1] and mde > meaningful:
        return Decision(INCONCLUSIVE, f"the eval set is too small to tell: {shown}; it detects differences of "
                                      f"{mde:.4g} or more (MDE), larger than the {meaningful:.4g} that matters. "
                                      "Add eval examples", False, even)
    return Decision(PROMPT, f"the fine-tune is not significantly better, {shown}, and the eval set would have "
                            f"detected {mde:.4g} (MDE): prompting is as good and needs no training", False, even)

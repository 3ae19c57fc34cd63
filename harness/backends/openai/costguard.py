"""The cost guard: estimate a fine-tune's training cost and refuse one above ``max_cost``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.backends.openai.state import FineTuneSettings
from harness.cost import PricingTable, training_cost
from harness.data.records import Split
from harness.data.tokens import billing_tokens, default_epochs, make_counter
from harness.errors import TrainingError


class CostLimitError(TrainingError):
    """The estimated training cost is above the configured ``max_cost``; no job was started."""


def estimate_cost(train: Split, settings: FineTuneSettings, pricing: PricingTable, *,
                  count_tokens: Any = None) -> tuple[float | None, str]:
    """(estimated training dollars or None when unpriced, the explanation shown to users)."""

    counter = make_counter(count_tokens)
    tokens = billing_tokens([counter.conversation(ex.messages) for ex in train.examples])
    epochs = settings.n_epochs if settings.n_epochs != "auto" else default_epochs(len(train))
    price = pricing.training_price(settings.base_model)
    if price is None:
        return None, (f"{tokens} training tokens × {epochs} epochs; no training price for "
                      f"{settings.base_model!r} in the pricing table (as of {pricing.as_of})")
    cost = training_cost(tokens, float(epochs), price)
    return cost, (f"${cost:.4f} = {tokens} training tokens ({counter.description}) × {epochs} epochs "
                  f"× ${price}/1M (prices as of {pricing.as_of})")


def check_cost(train: Split, settings: FineTuneSettings, pricing: PricingTable, *,
               count_tokens: Any = None, progress: Callable[[str], None]) -> float | None:
    """The estimate (shown through ``progress``); raises :class:`CostLimitError` above ``max_cost``."""
    cost, explanation = estimate_cost(train, settings, pricing, count_tokens=count_tokens)
    limit = settings.max_cost
    if limit is not None and cost is None:
        raise CostLimitError(f"refusing to start a fine-tuning job with max_cost ${limit:.2f}: "
                             f"cannot estimate its cost ({explanation}); add the model to the "
                             "pricing table")
    if limit is not None and cost is not None and cost > limit:
        raise CostLimitError(f"refusing to start a fine-tuning job: estimated training cost "
                             f"{explanation} exceeds max_cost ${limit:.2f}")
    progress(f"estimated training cost: {explanation}")
    return cost

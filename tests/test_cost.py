"""Pricing table, usage cost, cost per 1,000 requests and prompting-vs-fine-tuning break-even."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from harness.cost import (
    DEFAULT_PRICES,
    PRICES_AS_OF,
    ModelPrice,
    PricingTable,
    base_of_fine_tuned,
    break_even_requests,
    cost_for_model,
    cost_of_usage,
    prompting_vs_fine_tuning,
    training_cost,
    usage_cost,
)
from harness.protocol import Generation

money = st.floats(min_value=0, max_value=1e3, allow_nan=False, allow_infinity=False)
tokens = st.integers(min_value=0, max_value=10**7)
prices = st.builds(ModelPrice, money, money, money, money, money)


def test_default_table_is_dated_and_covers_current_models():
    table = PricingTable()
    assert table.as_of == PRICES_AS_OF
    for model in ("gpt-4o-mini", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-4o"):
        assert table.training_price(model) is not None, model


def test_snapshot_ids_and_fine_tuned_ids_resolve_to_their_listed_model():
    table = PricingTable()
    mini = DEFAULT_PRICES["gpt-4o-mini"]
    assert table.base_price("gpt-4o-mini-2024-07-18") == mini
    assert table.base_price("gpt-3.5-turbo-0125") == DEFAULT_PRICES["gpt-3.5-turbo"]
    # A different model sharing a prefix is not priced as the shorter one.
    assert table.base_price("gpt-4o-audio-preview") is None
    assert base_of_fine_tuned("ft:gpt-4o-mini-2024-07-18:org:suffix:abc") == "gpt-4o-mini-2024-07-18"
    tuned = table.inference_price("ft:gpt-4o-mini-2024-07-18:org:suffix:abc")
    assert tuned == ModelPrice(mini.fine_tuned_input_per_1m, mini.fine_tuned_output_per_1m)
    assert table.inference_price("ft:unknown-model::x") is None


def test_overrides_from_json_replace_fields_and_add_models(tmp_path):
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"as_of": "2030-01-01", "models": {
        "gpt-4o-mini": {"training_per_1m": 1.25},
        "tiny": {"input_per_1m": 0, "output_per_1m": 0, "training_per_1m": 0.5}}}))
    table = PricingTable.from_json(path)
    assert table.as_of == "2030-01-01"
    assert table.training_price("gpt-4o-mini") == 1.25
    assert table.base_price("gpt-4o-mini").input_per_1m == DEFAULT_PRICES["gpt-4o-mini"].input_per_1m
    assert table.training_price("tiny") == 0.5
    path.write_text(json.dumps({"models": {"gpt-4o": {"trainng_per_1m": 3}}}))
    with pytest.raises(ValueError, match="trainng_per_1m"):
        PricingTable.from_json(path)


def test_prices_must_be_finite_and_non_negative():
    with pytest.raises(ValueError):
        ModelPrice(-1.0, 1.0)
    with pytest.raises(ValueError):
        ModelPrice(1.0, math.inf)


@given(prices, tokens, tokens, st.integers(min_value=1, max_value=1000))
def test_usage_cost_is_linear_in_requests(price, prompt, completion, requests):
    one = usage_cost(prompt, completion, price)
    many = usage_cost(prompt * requests, completion * requests, price)
    assert many == pytest.approx(one * requests, rel=1e-9, abs=1e-12)
    assert one == pytest.approx((prompt * price.input_per_1m + completion * price.output_per_1m) / 1e6)


@given(prices, st.lists(st.tuples(tokens, tokens), min_size=1, max_size=30))
def test_cost_per_1k_requests_is_the_mean_request_cost_times_1000(price, usages):
    generations = [Generation("x", p, c) for p, c in usages]
    result = cost_of_usage(generations, price)
    mean = sum(usage_cost(p, c, price) for p, c in usages) / len(usages)
    assert result.requests == len(usages)
    assert result.prompt_tokens == sum(p for p, _ in usages)
    assert result.cost_per_1k_requests == pytest.approx(mean * 1000, rel=1e-9, abs=1e-9)


def test_no_usage_costs_nothing():
    assert cost_of_usage([], ModelPrice(1, 1)).cost_per_1k_requests == 0.0


def test_cost_for_a_fine_tuned_candidate_uses_fine_tuned_prices():
    usages = [Generation("a", 1000, 100), Generation("b", 3000, 300)]
    cost = cost_for_model("ft:gpt-4.1-nano-2025-04-14:org::id", usages, PricingTable())
    assert cost.total_cost == pytest.approx((4000 * 0.20 + 400 * 0.80) / 1e6)
    assert cost.cost_per_1k_requests == pytest.approx(cost.total_cost / 2 * 1000)
    assert cost_for_model("local-tiny", usages, PricingTable()) is None


@given(tokens, st.integers(min_value=0, max_value=50), money)
def test_training_cost_scales_with_tokens_and_epochs(n_tokens, epochs, price):
    cost = training_cost(n_tokens, epochs, price)
    assert cost == pytest.approx(n_tokens * epochs * price / 1e6)
    assert training_cost(n_tokens * 2, epochs, price) == pytest.approx(2 * cost)


@given(money, money, money)
def test_break_even_is_where_totals_cross(one_off, prompted, tuned):
    n = break_even_requests(one_off, prompted, tuned)
    if tuned >= prompted:
        assert n == math.inf
        return
    assume(prompted - tuned > 1e-9)
    # At the break-even point both options cost the same; before it prompting is cheaper,
    # after it the fine-tune is.
    assert n * prompted == pytest.approx(one_off + n * tuned, rel=1e-6, abs=1e-6)
    later = n + 1
    assert later * prompted >= one_off + later * tuned - 1e-9


@given(st.integers(min_value=100, max_value=5000), st.integers(min_value=10, max_value=500),
       st.integers(min_value=1, max_value=200), st.integers(min_value=10_000, max_value=10**6),
       st.integers(min_value=1, max_value=10))
def test_guide_break_even_shorter_prompts_pay_for_training(few_shot, short, output, train_tokens, epochs):
    table = PricingTable()
    base = table.base_price("gpt-4o-mini")
    tuned = table.inference_price("ft:gpt-4o-mini:org::x")
    result = prompting_vs_fine_tuning(
        base_price=base, fine_tuned_price=tuned,
        training_price_per_1m=table.training_price("gpt-4o-mini"), training_tokens=train_tokens,
        n_epochs=epochs, prompted_input_tokens=few_shot, fine_tuned_input_tokens=short,
        output_tokens=output)
    assert result.training_cost == pytest.approx(train_tokens * epochs * 3.00 / 1e6)
    if math.isinf(result.break_even_requests):  # no saving, up to float rounding of the prices
        assert result.fine_tuned_cost_per_request >= result.prompted_cost_per_request * (1 - 1e-9)
    else:
        prompting, fine_tuning = result.total_cost(result.break_even_requests * 2 + 1)
        assert fine_tuning < prompting


def test_worked_example_break_even():
    # 2,000-token few-shot prompt vs 100-token prompt on a fine-tune, 50 output tokens,
    # 1M training tokens for 3 epochs on gpt-4o-mini.
    base, tuned = ModelPrice(0.15, 0.60), ModelPrice(0.30, 1.20)
    result = prompting_vs_fine_tuning(base_price=base, fine_tuned_price=tuned,
                                      training_price_per_1m=3.0, training_tokens=1_000_000,
                                      n_epochs=3, prompted_input_tokens=2000,
                                      fine_tuned_input_tokens=100, output_tokens=50)
    prompted = (2000 * 0.15 + 50 * 0.60) / 1e6
    fine_tuned = (100 * 0.30 + 50 * 1.20) / 1e6
    assert result.break_even_requests == pytest.approx(9.0 / (prompted - fine_tuned))

"""Search specs, trial expansion and selection: pure parts of ``kind = "search"``."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.errors import SpecError
from harness.tuning.search import expand_trials, parse_search, select_best

WHERE = "spec.toml: suites.s.candidates.search"
values = st.lists(st.integers(min_value=1, max_value=64), min_size=1, max_size=4, unique=True)


@settings(deadline=None)  # the first example imports scikit-learn
@given(st.dictionaries(st.sampled_from(["r", "alpha", "batch_size", "n_epochs"]), values, min_size=1, max_size=3))
def test_a_grid_tries_every_combination_once(grid):
    search = parse_search({}, {"base_kind": "lora", "grid": grid}, WHERE)
    trials = expand_trials(search)
    names = sorted(grid)
    expected = {tuple(combo) for combo in itertools.product(*(grid[n] for n in names))}
    assert {tuple(t[n] for n in names) for t in trials} == expected
    assert len(trials) == len(expected)


@settings(deadline=None)
@given(st.integers(min_value=1, max_value=12), st.integers(min_value=0, max_value=2**16))
def test_random_search_is_seeded_and_stays_inside_the_space(trials, seed):
    options = {"base_kind": "lora", "trials": trials, "seed": seed,
               "random": {"learning_rate": {"log_uniform": [1e-4, 1e-2]}, "r": [4, 8, 16],
                          "dropout": {"uniform": [0.0, 0.2]}, "alpha": {"int_uniform": [8, 32]}}}
    first = expand_trials(parse_search({}, options, WHERE))
    assert first == expand_trials(parse_search({}, options, WHERE))
    assert 1 <= len(first) <= trials
    for trial in first:
        assert 1e-4 <= trial["learning_rate"] <= 1e-2
        assert trial["r"] in (4, 8, 16)
        assert 0.0 <= trial["dropout"] <= 0.2
        assert isinstance(trial["alpha"], int) and 8 <= trial["alpha"] <= 32
        assert type(trial["learning_rate"]) is float  # plain Python numbers for keys and JSON


def test_random_search_over_lists_only_samples_without_replacement():
    options = {"base_kind": "full", "trials": 10, "seed": 1, "random": {"learning_rate": [1e-3, 3e-3], "n_epochs": [1, 2]}}
    trials = expand_trials(parse_search({}, options, WHERE))
    assert len(trials) == 4  # the whole space, each setting once
    assert len({tuple(sorted(t.items())) for t in trials}) == 4


def test_list_valued_parameters_can_be_searched():
    grid = {"target_modules": ["all-linear", ["q_proj", "v_proj"]]}
    trials = expand_trials(parse_search({}, {"base_kind": "lora", "grid": grid}, WHERE))
    assert [t["target_modules"] for t in trials] == ["all-linear", ["q_proj", "v_proj"]]


@given(st.lists(st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=False)), min_size=1, max_size=10))
def test_select_best_picks_the_first_extreme_score(scores):
    usable = [s for s in scores if s is not None and not math.isnan(s)]
    if not usable:
        with pytest.raises(ValueError):
            select_best(scores, "min")
        return
    assert select_best(scores, "min") == scores.index(min(usable))
    assert select_best(scores, "max") == scores.index(max(usable))


@pytest.mark.parametrize(("options", "message"), [
    ({"grid": {"r": [4]}}, "base_kind: expected one of lora, full"),
    ({"base_kind": "lora"}, "exactly one of `grid"),
    ({"base_kind": "lora", "grid": {"r": [4]}, "random": {"r": [4]}, "trials": 2}, "exactly one of"),
    ({"base_kind": "lora", "grid": {"rank": [4]}}, "grid.rank: not a lora parameter"),
    ({"base_kind": "full", "grid": {"r": [4]}}, "grid.r: not a full parameter"),
    ({"base_kind": "lora", "grid": {"r": []}}, "grid.r: expected a non-empty list"),
    ({"base_kind": "lora", "grid": {"r": 4}}, "grid.r: expected a non-empty list"),
    ({"base_kind": "lora", "random": {"r": [4, 8]}}, "trials: a random search needs trials"),
    ({"base_kind": "lora", "grid": {"r": [4]}, "trials": 3}, "only a random search takes `trials`"),
    ({"base_kind": "lora", "random": {"learning_rate": {"log_uniform": [0, 1]}}, "trials": 2},
     "random.learning_rate.log_uniform: bounds must be positive"),
    ({"base_kind": "lora", "random": {"learning_rate": {"normal": [0, 1]}}, "trials": 2},
     "random.learning_rate: expected a list of values or a table"),
    ({"base_kind": "lora", "random": {"alpha": {"int_uniform": [8, 2]}}, "trials": 2}, "low < high"),
    ({"base_kind": "lora", "grid": {"r": [4]}, "mode": "best"}, "mode: expected 'min' or 'max'"),
    ({"base_kind": "lora", "grid": {"r": [4]}, "strategy": "grid"}, "unknown key 'strategy'"),
])
def test_bad_search_specs_name_the_key(options, message):
    with pytest.raises(SpecError, match=r"suites\.s\.candidates\.search") as raised:
        parse_search({}, options, WHERE)
    assert message in str(raised.value)


def test_selection_direction_follows_the_metric_name():
    assert parse_search({}, {"base_kind": "lora", "grid": {"r": [4]}}, WHERE).mode == "min"
    assert parse_search({}, {"base_kind": "lora", "grid": {"r": [4]}, "select": "accuracy"}, WHERE).mode == "max"

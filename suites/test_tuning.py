"""Hyperparameter search as a candidate: a LoRA-rank grid over the sentiment LoRA.

The search trains (or finds in the cache) each trial, keeps the one with the lowest validation
loss and is then evaluated like any other candidate. Declared in ``fixtures/candidates.toml``
under ``[suites.tuning]``; its trials table is in the report's training section and in
``results.json`` (``training.search``).
"""

import pytest

pytestmark = pytest.mark.ft_suite("tuning")


def test_search_keeps_the_trial_with_the_lowest_validation_loss(candidate):
    tuned = candidate("lora_search")
    trials = tuned.training.search["trials"]
    best = min(trials, key=lambda trial: trial["eval_loss"])
    assert len(trials) == 2 and best["best"]  # the grid over r
    assert tuned.fingerprint == best["fingerprint"]
    assert tuned.training.eval_loss == best["eval_loss"]


def test_tuned_candidate_beats_base(evaluate, compare):
    result = compare(evaluate("base"), evaluate("lora_search"), metric="accuracy")
    assert result.mean_b > result.mean_a, result.verdict
    assert result.p_value < 0.05, result.verdict
    tuned = evaluate("lora_search")
    references = tuned.details["degenerate"]
    assert tuned.metrics["accuracy"] > references["majority_rate"], references
    assert not [f for f in result.flags if f.startswith("lora_search:")], result.flags


@pytest.mark.parametrize("name", ["base", "lora_search"])
def test_no_regression_against_baseline(name, evaluate, gate):
    gate(evaluate(name))

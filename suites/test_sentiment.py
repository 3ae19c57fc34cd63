"""Sentiment classification: do the fine-tuned candidates beat the base model, and did anything
regress against the committed baseline?

Candidates are declared in ``fixtures/candidates.toml`` under ``[suites.sentiment]``.
"""

import pytest

pytestmark = pytest.mark.ft_suite("sentiment")

FINE_TUNED = ["lora", "full"]


@pytest.mark.parametrize("name", FINE_TUNED)
def test_finetuned_beats_base(name, evaluate, compare):
    base = evaluate("base")
    tuned = evaluate(name)
    result = compare(base, tuned, metric="accuracy")
    assert result.mean_b > result.mean_a, result.verdict
    assert result.p_value < 0.05, result.verdict


@pytest.mark.parametrize("name", FINE_TUNED)
def test_finetuned_beats_the_majority_class(name, evaluate):
    tuned = evaluate(name)
    references = tuned.details["degenerate"]
    assert tuned.metrics["accuracy"] > references["majority_rate"], references
    assert tuned.metrics["accuracy"] > references["train_majority_accuracy"], references
    assert not references["flags"], references["flags"]


@pytest.mark.parametrize("name", ["base", *FINE_TUNED])
def test_no_regression_against_baseline(name, evaluate, gate):
    gate(evaluate(name))

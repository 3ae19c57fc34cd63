"""Sentiment classification: do the fine-tuned candidates beat the base model and prompting it,
and did anything regress against the committed baseline?

Candidates are declared in ``fixtures/candidates.toml`` under ``[suites.sentiment]``: the base,
the base prompted zero-shot (an instruction) and few-shot (4 stratified train examples), a LoRA
adapter and a full fine-tune. The honest comparison: base and prompted candidates are scored by
label log-likelihood (``scoring = "likelihood"``), so their accuracy measures which label the
model prefers, not whether it happens to reply with a label word (by generation the base names
no label at all and would score 0); the fine-tunes are scored by generation, as they are served,
which is the stricter test for them. The report's "Fine-tune or prompt?" section weighs the best
prompted candidate against the best fine-tune (paired test, tokens per request, break-even).
"""

import pytest

pytestmark = pytest.mark.ft_suite("sentiment")

FINE_TUNED = ["lora", "full"]
PROMPTED = ["zeroshot", "fewshot"]


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


@pytest.mark.parametrize("name", ["base", *PROMPTED])
def test_base_and_prompted_candidates_are_scored_by_label_likelihood(name, evaluate):
    result = evaluate(name)
    assert result.details["method"] == "likelihood"
    assert not result.details["degenerate"]["unparsed_share"]  # every prediction is a label
    assert result.usage["prompt_tokens"] > 0  # measured per request, priced in the decision


def test_few_shot_examples_come_from_the_train_split(evaluate):
    shots = evaluate("fewshot").details["prompt"]
    assert len(shots["shot_ids"]) == 4 and all(i.startswith("train-") for i in shots["shot_ids"])
    assert sorted(shots["shot_labels"]) == ["negative"] * 2 + ["positive"] * 2
    assert evaluate("fewshot").usage["prompt_tokens"] > 1.5 * evaluate("zeroshot").usage["prompt_tokens"]


@pytest.mark.parametrize("name", FINE_TUNED)
def test_finetuned_beats_prompting_the_base(name, evaluate, compare):
    best = max((evaluate(p) for p in PROMPTED), key=lambda r: r.metrics["accuracy"])
    result = compare(best, evaluate(name), metric="accuracy")
    assert result.mean_b > result.mean_a, result.verdict
    assert result.p_value < 0.05, result.verdict


@pytest.mark.parametrize("name", ["base", *PROMPTED, *FINE_TUNED])
def test_no_regression_against_baseline(name, evaluate, gate):
    gate(evaluate(name))

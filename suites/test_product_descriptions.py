"""Data-to-text generation: product fields in, one descriptive sentence out, scored with BLEU and
ROUGE against references. Fine-tuned candidates must beat the base and the best prompted
candidate (zero-shot instruction, or 2 train examples as shots), and nothing may regress.

Candidates are declared in ``fixtures/candidates.toml`` under ``[suites.product_descriptions]``.
"""

import pytest

pytestmark = pytest.mark.ft_suite("product_descriptions")

FINE_TUNED = ["lora", "full"]
PROMPTED = ["zeroshot", "fewshot"]


@pytest.mark.parametrize("name", FINE_TUNED)
def test_finetuned_beats_base(name, evaluate, compare):
    base = evaluate("base")
    tuned = evaluate(name)
    for metric in ("rougeL", "bleu"):
        result = compare(base, tuned, metric=metric)
        assert result.mean_b > result.mean_a, result.verdict
        assert result.p_value < 0.05, result.verdict


def test_the_best_finetune_beats_the_best_prompted_candidate(evaluate, compare):
    prompted = max((evaluate(name) for name in PROMPTED), key=lambda r: r.metrics["rougeL"])
    tuned = max((evaluate(name) for name in FINE_TUNED), key=lambda r: r.metrics["rougeL"])
    result = compare(prompted, tuned, metric="rougeL")
    assert result.mean_b > result.mean_a and result.p_value < 0.05, result.verdict


@pytest.mark.parametrize("name", ["base", *PROMPTED, *FINE_TUNED])
def test_no_regression_against_baseline(name, evaluate, gate):
    gate(evaluate(name))

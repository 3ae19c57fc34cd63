"""Data-to-text generation: product fields in, one descriptive sentence out, scored with BLEU and
ROUGE against references. Fine-tuned candidates must beat the base and not regress.

Candidates are declared in ``fixtures/candidates.toml`` under ``[suites.product_descriptions]``.
"""

import pytest

pytestmark = pytest.mark.ft_suite("product_descriptions")

FINE_TUNED = ["lora", "full"]


@pytest.mark.parametrize("name", FINE_TUNED)
def test_finetuned_beats_base(name, evaluate, compare):
    base = evaluate("base")
    tuned = evaluate(name)
    for metric in ("rougeL", "bleu"):
        result = compare(base, tuned, metric=metric)
        assert result.mean_b > result.mean_a, result.verdict
        assert result.p_value < 0.05, result.verdict


@pytest.mark.parametrize("name", ["base", *FINE_TUNED])
def test_no_regression_against_baseline(name, evaluate, gate):
    gate(evaluate(name))

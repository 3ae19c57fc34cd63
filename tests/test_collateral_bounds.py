"""Collateral checks use the gate's test for their score type: Tango for 0/1 items, the betting bound for bounded
scores (Brier, ROUGE-L / SemScore agreement), paired t only for bits per byte (no upper bound)."""

from __future__ import annotations

import numpy as np

from harness.gate.collateral import Paired, compare_check, score_range
from harness.stats.margin import BETTING_METHOD, T_METHOD
from harness.stats.paired_binary import TANGO_METHOD


def _check(metric: str, reference: list[float], candidate: list[float], tolerance: float,
           higher_is_better: bool) -> dict:
    ids = [f"i{k}" for k in range(len(reference))]
    return compare_check(Paired(ids, reference, candidate), tolerance=tolerance, alpha=0.05,
                         higher_is_better=higher_is_better, bounds=score_range(metric))


def test_each_collateral_metric_reads_the_test_of_its_score_type() -> None:
    rng = np.random.default_rng(2)
    brier = rng.uniform(0.0, 0.5, 60).tolist()
    worse = [b + (0.3 if k % 7 == 0 else 0.0) for k, b in enumerate(brier)]
    assert _check("brier", brier, worse, 0.02, False)["test"]["method"] == BETTING_METHOD
    agreement = rng.uniform(0.2, 1.0, 60).tolist()
    assert _check("agreement_rougeL", [1.0] * 60, agreement, 0.05, True)["test"]["method"] == BETTING_METHOD
    assert _check("agreement_semscore", [1.0] * 60, [a - 0.9 for a in agreement], 0.05, True)["test"]["method"] \
        == BETTING_METHOD  # a cosine may be negative: the range is −1…1
    refusals = [1.0] * 40 + [0.0] * 20
    assert _check("refusal_rate", refusals, refusals[::-1], 0.05, True)["test"]["method"] == TANGO_METHOD
    bits = rng.uniform(0.8, 1.6, 60).tolist()
    assert score_range("bits_per_byte") is None
    assert _check("bits_per_byte", bits, [b + 0.01 for b in bits], 0.25, False)["test"]["method"] == T_METHOD


def test_unchanged_brier_scores_on_a_few_items_do_not_prove_non_inferiority() -> None:
    """30 items whose Brier did not move cannot rule out a rise of 0.02 from rare large misses: the paired t
    interval (a point at 0) passed for certain; the betting bound on 0–2 reads inconclusive."""
    brier = np.random.default_rng(3).uniform(0.0, 0.4, 30).tolist()
    outcome = _check("brier", brier, brier, 0.02, False)
    assert outcome["verdict"] == "inconclusive"
    assert outcome["ci"][1] > 0.02  # the candidate − reference interval allows a rise beyond the tolerance
    many = np.random.default_rng(4).uniform(0.0, 0.4, 3000).tolist()
    assert _check("brier", many, many, 0.02, False)["verdict"] == "pass"

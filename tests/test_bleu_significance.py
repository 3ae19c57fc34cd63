"""Corpus BLEU tested at corpus level: resampled statistics equal sacrebleu's corpus_score on the
resampled corpus, the A/B p-value equals sacrebleu's paired bootstrap, the candidates-table CI
contains the corpus BLEU it brackets, and the gate tests corpus BLEU."""

from __future__ import annotations

import numpy as np
import pytest
import sacrebleu
from sacrebleu.metrics import BLEU
from sacrebleu.significance import PairedTest

from harness.gate import GateConfig, check
from harness.gate.baseline import entry_from_result
from harness.gate.verdict import PASS, REGRESSED
from harness.metrics import bleu
from harness.metrics.bleu_metric import resampled_corpus_bleu
from harness.report.intervals import metric_intervals
from harness.results import EvalResult
from harness.runner.scoring import score_generation
from harness.stats import compare_corpus, resample_counts

WORDS = ["the", "a", "small", "red", "blue", "green", "cotton", "wool", "shirt", "bag", "cup", "lamp", "soft", "bright", "strong", "light", "warm"]


def corpus(n: int, seed: int, noise: float) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    references = [" ".join(rng.choice(WORDS, size=rng.integers(6, 12))) for _ in range(n)]
    hypotheses = []
    for ref in references:
        words = [w if rng.random() > noise else str(rng.choice(WORDS)) for w in ref.split()]
        hypotheses.append(" ".join(words))
    return hypotheses, references


def test_resampled_statistics_equal_sacrebleu_corpus_score_of_each_resample():
    hyps, refs = corpus(12, 1, 0.4)
    stats = bleu(hyps, refs).stats
    counts = resample_counts(12, 25, seed=3)
    ours = resampled_corpus_bleu(stats, counts)
    indices = np.random.default_rng(3).integers(0, 12, (25, 12))
    for r in range(25):
        drawn = indices[r]
        expected = sacrebleu.corpus_bleu([hyps[i] for i in drawn], [[refs[i] for i in drawn]]).score
        assert ours[r] == pytest.approx(expected, abs=1e-9)


def test_ab_p_value_equals_sacrebleu_paired_bootstrap(monkeypatch):
    monkeypatch.setenv("SACREBLEU_SEED", "12345")
    refs = corpus(60, 2, 0.0)[1]
    hyps_a = corpus(60, 2, 0.5)[0]
    hyps_b = corpus(60, 2, 0.35)[0]
    _, scores = PairedTest([("a", hyps_a), ("b", hyps_b)], {"BLEU": BLEU()}, [refs], test_type="bs",
                           n_samples=1000)()
    expected = scores["BLEU"][1]
    stats_a, stats_b = bleu(hyps_a, refs).stats, bleu(hyps_b, refs).stats
    result = compare_corpus(lambda c: resampled_corpus_bleu(stats_a, c), lambda c: resampled_corpus_bleu(stats_b, c),
                            60, n_resamples=1000, seed=12345)
    assert result.mean_b == pytest.approx(expected.score)
    assert result.p_value == pytest.approx(expected.p_value)
    assert result.ci[0] <= result.difference <= result.ci[1]


def _generation_result(candidate: str, hyps: list[str], refs: list[str]) -> EvalResult:
    metrics, per_example, signatures, details = score_generation(hyps, refs, ["bleu"])
    n = len(refs)
    return EvalResult(suite="descriptions", candidate=candidate, kind="lora", fingerprint="m" * 64,
                      task="generation", split="eval", split_fingerprint="e" * 64,
                      example_ids=[f"ex-{i}" for i in range(n)], inputs=[""] * n, references=refs,
                      predictions=hyps, metrics=metrics, per_example=per_example, signatures=signatures,
                      details=details)


@pytest.mark.parametrize("noise", [0.0, 0.3, 0.7, 0.95])
def test_the_candidates_table_ci_of_bleu_is_of_corpus_bleu_and_contains_it(noise):
    hyps, refs = corpus(80, 4, noise)
    result = _generation_result("lora", hyps, refs)
    interval = metric_intervals(result)["bleu"]
    assert interval.of_aggregate and interval.per_example_mean == result.metrics["bleu"]
    assert interval.low <= result.metrics["bleu"] <= interval.high


def test_the_gate_tests_corpus_bleu():
    # 150 unchanged sentences bound the drop within 3 points: one sentence here can move corpus BLEU by
    # about 114 points (jackknife), so 80 could not (z² w / (n + z²) = 3.7; README "Statistics")
    hyps, refs = corpus(150, 5, 0.2)
    worse, _ = corpus(150, 5, 0.8)
    accepted = _generation_result("lora", hyps, refs)
    from harness.gate.baseline import Baseline

    baseline = Baseline(entries={("descriptions", "lora"): entry_from_result(accepted, versions={}, date="d")})
    config = GateConfig.from_mapping({"metrics": {"bleu": {"tolerance": 3.0}}})
    [same] = check(_generation_result("lora", hyps, refs), baseline, config)
    assert same.verdict == PASS and same.details["kind"] == "corpus"
    [dropped] = check(_generation_result("lora", worse, refs), baseline, config)
    assert dropped.verdict == REGRESSED
    expected = sacrebleu.corpus_bleu(worse, [refs]).score - sacrebleu.corpus_bleu(hyps, [refs]).score
    assert dropped.details["delta"] == pytest.approx(expected)
    assert dropped.details["ci"][1] < -3.0

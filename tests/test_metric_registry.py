"""The metric registry: its facts agree with what scoring produces and with the reference libraries."""

from __future__ import annotations

import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.metrics.registry import (
    CLASSIFICATION,
    CORPUS,
    GENERATION,
    MEAN,
    METRICS,
    OPTIONS,
    corpus_stats_table,
    default_metrics,
    info,
    mean_of_scores,
    metrics_for,
    options_for,
    paired_score_table,
    percent_scale,
)
from harness.runner.scoring import score_classification, score_generation

PREDICTIONS = ["the red lamp is bright", "a small green kettle", "blue chair", "the lamp", "exact words here"]
REFERENCES = ["the red lamp is very bright", "a big green kettle", "a blue wooden chair", "the lamp", "exact words here"]


def test_every_generation_metric_produces_the_score_the_registry_names():
    text_metrics = [m for m in metrics_for(GENERATION) if not info(m).graded]  # graded: the runner scores them
    metrics, per_example, signatures, _ = score_generation(PREDICTIONS, REFERENCES, metrics_for(GENERATION))
    assert set(metrics) == set(text_metrics) == set(signatures)
    for name in metrics:
        facts = info(name)
        assert facts.score in per_example, name
        scores = per_example[facts.score]
        assert len(scores) == len(PREDICTIONS)
        assert all(0 <= s <= facts.scale + 1e-9 for s in scores), name  # sacrebleu: 100.00000000000004
        if facts.score_kind == "binary":
            assert set(scores) <= {0.0, 1.0}
        if facts.aggregate == MEAN:
            assert metrics[name] == pytest.approx(statistics.fmean(scores)), name


def test_bleu_is_corpus_level_and_on_the_0_100_scale_as_sacrebleu():
    import sacrebleu

    metrics, per_example, _, details = score_generation(PREDICTIONS, REFERENCES, ["bleu"])
    assert len(details[info("bleu").stats]) == len(PREDICTIONS)
    assert info("bleu").aggregate == CORPUS and info("bleu").scale == 100.0
    assert metrics["bleu"] == pytest.approx(sacrebleu.corpus_bleu(PREDICTIONS, [REFERENCES]).score)
    assert metrics["bleu"] != pytest.approx(statistics.fmean(per_example["sentence_bleu"]))


def test_rouge_is_the_mean_f_measure_times_100_as_rouge_score():
    from rouge_score import rouge_scorer

    metrics, _, _, _ = score_generation(PREDICTIONS, REFERENCES, ["rougeL"])
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=OPTIONS["rouge_stemmer"].default)
    expected = statistics.fmean(scorer.score(r, p)["rougeL"].fmeasure for p, r in zip(PREDICTIONS, REFERENCES,
                                                                                         strict=True))
    assert metrics["rougeL"] == pytest.approx(100 * expected)


def test_classification_metrics_and_their_scale():
    from sklearn.metrics import f1_score

    truth = ["pos", "neg", "pos", "pos", "neg", "neg"]
    replies = ["pos", "pos", "Pos.", "neg", "neg", "banana"]
    metrics, per_example, _, details = score_classification(replies, truth, ["pos", "neg"])
    assert tuple(metrics) == default_metrics(CLASSIFICATION) == metrics_for(CLASSIFICATION)
    assert per_example[info("accuracy").score] == [1.0, 0.0, 1.0, 0.0, 1.0, 0.0]
    assert metrics["accuracy"] == pytest.approx(0.5)
    assert metrics["f1_macro"] == pytest.approx(f1_score(truth, details["parsed"], labels=["pos", "neg"],
                                                          average="macro", zero_division=0))
    assert all(info(m).scale == 1.0 and not info(m).paired for m in metrics if m != "accuracy")


def test_classification_reports_only_the_metrics_a_suite_lists():
    metrics, per_example, signatures, _ = score_classification(["a", "b"], ["a", "a"], ["a", "b"],
                                                               wanted=["f1_macro", "accuracy"])
    assert list(metrics) == ["accuracy", "f1_macro"] and set(signatures) == set(metrics)
    assert "correct" in per_example  # the paired score stays for the gate


def test_derived_tables_read_the_registry():
    from harness.fmt import PERCENT_SCALE_METRICS, decimals_for
    from harness.results import PAIRED_SCORE

    assert paired_score_table() == PAIRED_SCORE
    assert list(PAIRED_SCORE) == ["accuracy", "exact_match", "bleu", "chrf", "chrfpp", "ter", "rouge1", "rouge2",
                                  "rougeL", "rougeLsum", "semscore"]
    assert PAIRED_SCORE["bleu"] == ("sentence_bleu", "continuous")
    assert PAIRED_SCORE["ter"] == ("sentence_ter", "continuous")
    assert PERCENT_SCALE_METRICS == percent_scale() == {"bleu", "chrf", "chrfpp", "ter", "rouge1", "rouge2", "rougeL",
                                                        "rougeLsum"}
    assert {decimals_for(m) for m in percent_scale()} == {2}
    assert {decimals_for(m) for m in METRICS if m not in percent_scale()} == {3}
    assert mean_of_scores() == set(PAIRED_SCORE) - {"bleu", "chrf", "chrfpp", "ter"}
    assert corpus_stats_table() == {name: f"{name}_stats" for name in ("bleu", "chrf", "chrfpp", "ter")}
    assert default_metrics(GENERATION) == ("exact_match", "bleu", "rouge1", "rouge2", "rougeL", "rougeLsum")


def test_options_belong_to_metrics_and_defaults_are_valid():
    for option in OPTIONS.values():
        assert option.default in option.choices or (not option.choices and isinstance(option.default, str))
        assert any(option.name in m.options for m in METRICS.values()), option.name
    assert options_for(["bleu"]) == ("bleu_tokenize",)
    assert options_for(["rouge1", "rougeL", "accuracy"]) == ("rouge_tokenizer", "rouge_stemmer")
    assert [name for name, m in METRICS.items() if not m.higher_is_better] == ["ter"]


def test_unknown_metric_lists_the_known_ones():
    with pytest.raises(KeyError, match=r"unknown metric 'blue' \(known: accuracy, exact_match, bleu"):
        info("blue")


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from([m for m in metrics_for(GENERATION) if not info(m).graded]), min_size=1, unique=True))
def test_any_selection_of_generation_metrics_is_scored_exactly(wanted):
    metrics, per_example, signatures, _ = score_generation(PREDICTIONS, REFERENCES, wanted)
    assert set(metrics) == set(wanted) == set(signatures)
    assert set(per_example) == {info(m).score for m in wanted}


def test_corpus_statistics_are_resampled_only_through_the_metric():
    """No gate or report module names BLEU's own resampling: corpus metrics own their statistics."""
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[1] / "harness"
    for folder in ("gate", "report", "runner"):
        for path in (root / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            assert "bleu_metric" not in text and "resampled_corpus_bleu" not in text, path


def test_every_corpus_metric_scores_a_sum_of_its_own_rows():
    """The registry's corpus metrics re-add their statistics: the full-corpus resample is the score."""
    import numpy as np

    from harness.metrics.registry import METRICS, corpus_options

    for name, facts in METRICS.items():
        if facts.corpus is None:
            continue
        scored = facts.corpus.score(PREDICTIONS, REFERENCES, corpus_options(name, {}))
        assert facts.corpus.subset_score(scored.stats) == pytest.approx(scored.score, abs=1e-9)
        assert len(scored.sentence_scores) == len(PREDICTIONS) == len(scored.stats)
        ones = np.ones((2, len(PREDICTIONS)), dtype=np.int64)
        assert list(facts.corpus.resampled_scores(scored.stats, ones)) == pytest.approx([scored.score] * 2)

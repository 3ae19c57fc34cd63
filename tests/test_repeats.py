"""Repeats feed the statistics: with sampled decoding each item's score is its mean over the runs
(Miller 2024, arXiv:2411.00640), the gate tests those means, and a suite can set ``repeats``."""

from __future__ import annotations

import json
import math
import statistics

import numpy as np
import pytest
import sacrebleu
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from harness.errors import SpecError
from harness.gate import GateConfig, check
from harness.options import SessionOptions
from harness.protocol import MAX_REPEAT
from harness.results import EvalResult
from harness.runner.scoring import score_generation
from harness.runner.stability import (
    apply_averages,
    apply_pooled,
    averaged_scores,
    pooled_corpus_statistics,
)
from harness.session import EvalSession
from harness.stats.bounded import betting_margin_arrays
from tests.test_gate import baseline_of, make_result


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 6).flatmap(lambda runs: st.lists(
    st.lists(st.sampled_from([0.0, 1.0]), min_size=runs, max_size=runs), min_size=1, max_size=30)))
def test_item_means_and_within_item_variance_equal_a_direct_computation(items):
    runs = [{"correct": [item[r] for item in items]} for r in range(len(items[0]))]
    averages = averaged_scores(runs, ["accuracy", "f1_macro"])["accuracy"]
    assert averages["scores"] == pytest.approx([statistics.fmean(item) for item in items], abs=1e-12)
    assert averages["value"] == pytest.approx(statistics.fmean(statistics.fmean(item) for item in items), abs=1e-12)
    assert averages["within_item_variance"] == pytest.approx(
        statistics.fmean(statistics.variance(item) for item in items), abs=1e-12)
    assert averages["items_varying"] == sum(1 for item in items if len(set(item)) > 1)


def test_only_mean_of_scores_metrics_are_averaged_and_unscored_items_stay_unscored():
    runs = [{"correct": [1.0, None], "rougeL": [10.0, 20.0]}, {"correct": [0.0, None], "rougeL": [30.0, 20.0]}]
    averages = averaged_scores(runs, ["accuracy", "rougeL", "bleu", "f1_macro"])
    assert set(averages) == {"accuracy", "rougeL"}
    assert averages["accuracy"]["scores"] == [0.5, None] and averages["accuracy"]["value"] == 0.5
    assert averages["rougeL"]["scores"] == [20.0, 20.0] and averages["rougeL"]["within_item_variance"] == 100.0


def test_the_gate_tests_the_per_item_means_of_sampled_repeats():
    rng = np.random.default_rng(5)
    baseline_runs = (rng.random((4, 60)) < 0.7).astype(float)
    current_runs = (rng.random((4, 60)) < 0.68).astype(float)
    base, current = make_result(baseline_runs[0]), make_result(current_runs[0])
    apply_averages(base, averaged_scores([{"correct": list(run)} for run in baseline_runs], ["accuracy"]))
    apply_averages(current, averaged_scores([{"correct": list(run)} for run in current_runs], ["accuracy"]))
    assert current.metrics["accuracy"] == pytest.approx(current_runs.mean(), abs=1e-12)
    record = check(current, baseline_of(base), GateConfig.from_mapping(
        {"alpha": 0.05, "metrics": {"accuracy": {"tolerance": 0.03}}}))[0]
    d = current_runs.mean(axis=0) - baseline_runs.mean(axis=0)
    half = sps.t.ppf(0.95, 59) * d.std(ddof=1) / math.sqrt(60)
    lower, upper = record.details["ci"]
    assert record.details["method"].startswith("betting")  # means of 0/1 runs: bounded 0–1 scores, not 0/1
    assert lower < d.mean() - half < d.mean() < d.mean() + half < upper  # the valid bound is wider than t's
    bounded = betting_margin_arrays(d[None, :], 0.03, 0.05, 1.0)  # the per-item means, on the 0–1 scale
    assert [lower, upper] == pytest.approx([bounded["lower"][0], bounded["upper"][0]], abs=1e-12)


def _spec(tmp_path, repeats: str):
    rows = [json.dumps({"messages": [{"role": "user", "content": f"q {i}"}, {"role": "assistant", "content": "a"}]})
            for i in range(4)]
    (tmp_path / "eval.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    spec = tmp_path / "spec.toml"
    spec.write_text(f'[suites.qa]\ntask = "generation"\neval = "eval.jsonl"\nrepeats = {repeats}\n'
                    '[suites.qa.candidates.base]\nkind = "base"\n', encoding="utf-8")
    return EvalSession(SessionOptions(spec_path=spec, root_dir=tmp_path, cache_dir=tmp_path / "cache"))


def test_a_suite_sets_repeats_in_the_spec(tmp_path):
    assert _spec(tmp_path, "5").spec.suite("qa").repeats == 5


@pytest.mark.parametrize(("value", "words"), [("0", "expected an integer >= 1, got 0"),
                                              (str(MAX_REPEAT + 1), f"expected an integer <= {MAX_REPEAT:,}"),
                                              ('"3"', "expected an integer, got")])
def test_repeats_out_of_bounds_is_refused_naming_the_key(tmp_path, value, words):
    with pytest.raises(SpecError, match=r"suites\.qa\.repeats") as info:
        _spec(tmp_path, value).spec  # noqa: B018 - loading the spec runs the checks
    assert words in str(info.value)


def test_sampled_repeats_pool_each_items_corpus_statistics() -> None:
    """Corpus BLEU under sampled repeats is the corpus score of all runs' outputs, and the gate's jackknife leaves
    out an item's runs together: its statistics are summed over the runs."""
    refs = ["the cat sat on the mat", "a dog ran in the park today", "we like green tea"]
    runs = [["the cat sat on a mat", "a dog ran in a park", "we like tea"],
            ["the cat is on the mat", "the dog ran in the park today", "we like green tea"]]
    details = [score_generation(run, refs, ["bleu", "chrf"])[3] for run in runs]
    pooled = pooled_corpus_statistics(details, ["bleu", "chrf", "accuracy"])
    assert sorted(pooled) == ["bleu", "chrf"]
    everything = [p for run in runs for p in run]
    assert pooled["bleu"]["value"] == pytest.approx(sacrebleu.corpus_bleu(everything, [refs * 2]).score, abs=1e-9)
    assert pooled["chrf"]["value"] == pytest.approx(sacrebleu.corpus_chrf(everything, [refs * 2]).score, abs=1e-9)
    first = EvalResult("s", "c", "lora", "f", "generation", "eval", "x", ["a", "b", "c"], [""] * 3, refs, runs[0],
                       {"bleu": 0.0}, {}, details=dict(details[0]))
    apply_pooled(first, pooled)
    key = pooled["bleu"]["key"]
    assert first.details[key] == (np.asarray(details[0][key]) + np.asarray(details[1][key])).tolist()
    assert first.metrics["bleu"] == pooled["bleu"]["value"]

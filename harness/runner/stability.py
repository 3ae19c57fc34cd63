"""``--ft-repeat N`` / ``repeats = N``: evaluate a candidate N times; the spread, and with sampling the scores.

Greedy decoding must give identical outputs every time; a candidate whose greedy outputs differ
between runs is reported as non-deterministic, and the gate reads run 1. Sampled decoding uses a
different seed per run, and then each item's score for the paired test, its interval and the MDE is
its mean over the N runs (Miller 2024, "Adding Error Bars to Evals", arXiv:2411.00640, section 3:
resampling answers removes the sampling noise from the item scores): the per-example scores and the
mean-of-scores metrics are replaced by those means. The report shows the within-item variance (the
mean over items of each item's sample variance across runs, what averaging removes: divided by N it is
the part of an item mean's variance due to sampling) and how many items' outputs differ between runs.
Corpus metrics (BLEU, chrF, TER) pool instead: each item's sufficient statistics are summed over the
N runs, so the metric's value is the corpus score of all N × n outputs and the gate's jackknife leaves
out an item's N outputs together (its pseudo-value is the item's contribution over all runs). Graded
metrics (judges, scorers, people) keep run 1; so does everything under greedy decoding.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from harness.context import BuildContext
from harness.data.records import Split
from harness.metrics.registry import corpus_metric, corpus_stats_table, mean_of_scores
from harness.protocol import Candidate, LabelScorer
from harness.results import PAIRED_SCORE, EvalResult
from harness.runner.scoring import score_task
from harness.spec import SuiteSpec


def spread(values: list[float]) -> dict[str, float]:
    """Mean, sample standard deviation, min and max of one metric over the repeats (pure)."""
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
    }


def averaged_scores(runs: Sequence[dict[str, list[float]]], metrics: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per metric whose aggregate is the mean of its per-example scores: each item's mean over the runs,
    the metric's value from those means, and the within-item variance (pure).

    ``runs``: the per-example scores of each run (same items, same order). Items with no score in a run
    (``None``) average their scored runs; an item no run scored stays ``None``.
    """
    out: dict[str, dict[str, Any]] = {}
    for metric in metrics:
        if metric not in mean_of_scores() or metric not in PAIRED_SCORE:
            continue
        key = PAIRED_SCORE[metric][0]
        if not all(key in run for run in runs):
            continue
        table = np.asarray([[np.nan if v is None else float(v) for v in run[key]] for run in runs], dtype=float)
        counts = np.sum(~np.isnan(table), axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.nansum(table, axis=0) / counts
            squares = np.nansum((table - means) ** 2, axis=0) / (counts - 1)
        scored = counts > 0
        varied = counts > 1
        out[metric] = {
            "key": key,
            "scores": [float(m) if ok else None for m, ok in zip(means, scored, strict=True)],
            "value": float(np.mean(means[scored])) if scored.any() else float("nan"),
            "within_item_variance": float(np.mean(squares[varied])) if varied.any() else float("nan"),
            "items_varying": int(np.sum(np.nanmax(table[:, varied], axis=0) != np.nanmin(table[:, varied], axis=0))),
        }
    return out


def pooled_corpus_statistics(runs: Sequence[dict[str, Any]], metrics: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per corpus metric: each item's sufficient statistics summed over the runs' ``details`` and the corpus
    score of their total (pure; the runs cover the same items in the same order)."""
    out: dict[str, dict[str, Any]] = {}
    for metric, key in corpus_stats_table().items():
        corpus = corpus_metric(metric)
        if metric not in metrics or corpus is None or not all(key in run for run in runs):
            continue
        table = np.sum([np.asarray(run[key], dtype=corpus.dtype) for run in runs], axis=0)
        out[metric] = {"key": key, "stats": table.tolist(), "value": corpus.subset_score(table)}
    return out


def apply_pooled(result: EvalResult, pooled: dict[str, dict[str, Any]]) -> None:
    """Make each corpus metric's pooled statistics the result's and its value the pooled corpus score."""
    for metric, total in pooled.items():
        result.details[total["key"]] = total["stats"]
        result.metrics[metric] = total["value"]


def apply_averages(result: EvalResult, averages: dict[str, dict[str, Any]]) -> None:
    """Make each averaged metric's per-item means the result's paired scores and its value their mean."""
    for metric, average in averages.items():
        result.per_example[average["key"]] = average["scores"]
        result.metrics[metric] = average["value"]


def repeat_evaluation(ctx: BuildContext, candidate: Candidate, suite: SuiteSpec, split: Split,
                      first: EvalResult, repeats: int) -> dict[str, Any]:
    """Run ``repeats - 1`` more evaluations (no output cache) and summarise all of them."""
    sampled = suite.decode.temperature > 0
    prompts = [ex.prompt for ex in split.examples]
    runs = [first.predictions]
    metric_runs = [dict(first.metrics)]
    score_runs = [{key: list(values) for key, values in first.per_example.items()}]
    detail_runs = [dict(first.details)]
    for i in range(1, repeats):
        params = replace(suite.decode, seed=suite.decode.seed + i) if sampled else suite.decode
        if first.details.get("method") in ("likelihood", "classifier"):
            assert isinstance(candidate, LabelScorer)  # those methods are a label scorer's
            predictions = candidate.predict_labels(prompts, list(suite.labels))
        else:
            predictions = [g.text for g in candidate.generate(prompts, params)]
        ctx.count("generated")
        metrics, per_example, _, details = score_task(suite.task, predictions, first.references, labels=suite.labels,
                                                      aliases=suite.label_aliases, metrics=tuple(first.metrics),
                                                      options=suite.metric_options)
        detail_runs.append(details)
        runs.append(predictions)
        metric_runs.append(metrics)
        score_runs.append(per_example)
    differing = sorted({first.example_ids[j] for run in runs[1:] for j, p in enumerate(run) if p != runs[0][j]})
    averages = averaged_scores(score_runs, tuple(first.metrics))
    pooled = pooled_corpus_statistics(detail_runs, tuple(first.metrics))
    run_one = {metric: first.metrics[metric] for metric in [*averages, *pooled]}
    if sampled:  # the gate, its interval and MDE read each item's mean (corpus: pooled statistics) over the runs
        apply_averages(first, averages)
        apply_pooled(first, pooled)
    return {
        "n": repeats,
        "averaged": sorted(averages) if sampled else [],
        "pooled": sorted(pooled) if sampled else [],
        "run_one": run_one if sampled else {},
        "n_differing": len(differing),
        "within_item_variance": {metric: a["within_item_variance"] for metric, a in averages.items()},
        "items_varying": {metric: a["items_varying"] for metric, a in averages.items()},
        "sampled": sampled,
        "deterministic": not differing,
        "differing_examples": differing[:20],
        # graded metrics (a model or user code scores them) are not recomputed per repeat
        "metrics": {name: spread([m[name] for m in metric_runs]) for name in first.metrics
                    if all(name in m for m in metric_runs)},
        "note": ("" if sampled or not differing else
                 f"non-deterministic: greedy outputs differ between runs on {len(differing)} example(s)"),
    }

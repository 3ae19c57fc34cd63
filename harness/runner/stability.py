"""``--ft-repeat N``: evaluate a candidate N times and report the spread of its metrics.

Greedy decoding must give identical outputs every time; a candidate whose greedy outputs differ
between runs is reported as non-deterministic. Sampled decoding uses a different seed per run.
"""

from __future__ import annotations

import statistics
from dataclasses import replace
from typing import Any

from harness.context import BuildContext
from harness.data.records import Split
from harness.protocol import Candidate, LabelScorer
from harness.results import EvalResult
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


def repeat_evaluation(ctx: BuildContext, candidate: Candidate, suite: SuiteSpec, split: Split,
                      first: EvalResult, repeats: int) -> dict[str, Any]:
    """Run ``repeats - 1`` more evaluations (no output cache) and summarise all of them."""
    sampled = suite.decode.temperature > 0
    prompts = [ex.prompt for ex in split.examples]
    runs = [first.predictions]
    metric_runs = [first.metrics]
    for i in range(1, repeats):
        params = replace(suite.decode, seed=suite.decode.seed + i) if sampled else suite.decode
        if first.details.get("method") in ("likelihood", "classifier"):
            assert isinstance(candidate, LabelScorer)  # those methods are a label scorer's
            predictions = candidate.predict_labels(prompts, list(suite.labels))
        else:
            predictions = [g.text for g in candidate.generate(prompts, params)]
        ctx.count("generated")
        metrics = score_task(suite.task, predictions, first.references, labels=suite.labels,
                             aliases=suite.label_aliases, metrics=tuple(first.metrics),
                             options=suite.metric_options)[0]
        runs.append(predictions)
        metric_runs.append(metrics)
    differing = sorted({first.example_ids[j] for run in runs[1:] for j, p in enumerate(run) if p != runs[0][j]})
    return {
        "n": repeats,
        "sampled": sampled,
        "deterministic": not differing,
        "differing_examples": differing[:20],
        # graded metrics (a model or user code scores them) are not recomputed per repeat
        "metrics": {name: spread([m[name] for m in metric_runs]) for name in first.metrics
                    if all(name in m for m in metric_runs)},
        "note": ("" if sampled or not differing else
                 f"non-deterministic: greedy outputs differ between runs on {len(differing)} example(s)"),
    }

"""Per-slice A/B comparisons and per-slice metric values with CIs (pure).

:func:`compare_slices` repeats an A/B comparison (:func:`harness.gate.ab.compare_paired`: McNemar
for 0/1 scores, paired t-test otherwise, paired bootstrap of the corpus score for corpus metrics) on every slice
of ``a``, and adjusts the slices' p-values together (Holm or Benjamini-Hochberg); a slice smaller
than ``min_size`` is reported but not tested. :func:`subset_result` restricts a result to a slice's
examples, so every per-candidate number (metric value, CI) is computed the same way per slice.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np

from harness.gate.ab import compare_paired
from harness.gate.slices import adjust_rows
from harness.gate.verdict import CORPUS_STATS
from harness.metrics.registry import corpus_metric, paired_in
from harness.results import PAIRED_SCORE, EvalResult


def subset_result(result: EvalResult, ids: list[str]) -> EvalResult:
    """``result`` restricted to the examples ``ids`` (in the result's order), with its paired metrics
    recomputed on them: means of per-example scores, corpus scores from their sufficient statistics."""
    wanted = set(ids)
    keep = [i for i, example_id in enumerate(result.example_ids) if example_id in wanted]

    def pick(values: list[Any]) -> list[Any]:
        return [values[i] for i in keep] if len(values) == len(result.example_ids) else []

    per_example = {name: pick(values) for name, values in result.per_example.items()}
    details = {key: pick(rows) for key, rows in result.details.items() if key in CORPUS_STATS.values()}
    metrics: dict[str, float] = {}
    for metric in paired_in([*PAIRED_SCORE, *result.metrics]):
        score = PAIRED_SCORE[metric][0]
        key, corpus = CORPUS_STATS.get(metric), corpus_metric(metric)
        if key and corpus is not None and details.get(key):
            metrics[metric] = corpus.subset_score(details[key])
        elif metric in result.metrics and per_example.get(score):
            values = [v for v in per_example[score] if v is not None]
            if values:
                metrics[metric] = float(sum(values) / len(values))
    return replace(result, example_ids=[result.example_ids[i] for i in keep], inputs=pick(result.inputs),
                   references=pick(result.references), predictions=pick(result.predictions), metrics=metrics,
                   per_example=per_example, details=details, example_fingerprints=pick(result.example_fingerprints),
                   slices={})


def compare_slices(a: EvalResult, b: EvalResult, metric: str, *, alpha: float = 0.05, correction: str = "holm",
                   min_size: int = 20) -> list[dict[str, Any]]:
    """``b`` against ``a`` on ``metric`` on every slice of ``a`` (or ``b``): one dict per slice."""

    members = a.slices or b.slices
    rows: list[dict[str, Any]] = []
    tested: list[int] = []
    for family, groups in members.items():
        for name, ids in groups.items():
            sub_a, sub_b = subset_result(a, ids), subset_result(b, ids)
            position = {example_id: i for i, example_id in enumerate(sub_b.example_ids)}
            common = [i for i in sub_a.example_ids if i in position]
            row: dict[str, Any] = {"family": family, "slice": name, "label": f"{family}: {name}", "metric": metric,
                                   "n": len(common)}
            try:
                scores_a, kind = sub_a.paired_scores(metric)
                scores_b, _ = sub_b.paired_scores(metric)
            except KeyError:
                continue
            if len(common) != len(sub_a.example_ids) or len(common) < 2:
                row.update(tested=False, reason=f"too few paired examples (n = {len(common)})")
                rows.append(row)
                continue
            ordered_b = [scores_b[position[i]] for i in sub_a.example_ids]
            both = [j for j, (x, y) in enumerate(zip(scores_a, ordered_b, strict=True)) if x is not None and y is not None]
            scores_a, ordered_b = [scores_a[j] for j in both], [ordered_b[j] for j in both]
            if len(both) < 2:
                row.update(tested=False, reason=f"too few scored pairs (n = {len(both)})")
                rows.append(row)
                continue
            result = compare_paired(sub_a, sub_b, metric, scores_a, ordered_b, kind, alpha=alpha)
            row.update(result.as_dict())
            row.update(family=family, slice=name, label=f"{family}: {name}", metric=metric)
            row["tested"] = len(common) >= min_size
            if row["tested"] and not math.isnan(result.p_value):
                tested.append(len(rows))
            elif not row["tested"]:
                row["reason"] = f"inconclusive (n = {len(common)} < {min_size}), MDE {result.mde:.3g}"
            rows.append(row)
    adjusted = adjust_rows([rows[i]["p_value"] for i in tested], correction) if tested else np.zeros(0)
    for i, p in zip(tested, adjusted, strict=True):
        rows[i]["p_value_adjusted"] = float(p)
        rows[i]["significant_adjusted"] = bool(p < alpha)
        rows[i]["correction"] = correction
    return rows

"""People's labels on a candidate's result: the per-example metric ``human:<other>`` (+1 / 0 / −1 where a
current label exists, None elsewhere) and each pairwise judge's agreement with people."""

from __future__ import annotations

from collections.abc import Callable

from harness.data.labels import current_scores, read_store
from harness.metrics._common import mean
from harness.metrics.agreement import agreement
from harness.results import EvalResult
from harness.spec import SuiteSpec


def _outputs(result: EvalResult) -> dict[str, str]:
    return dict(zip(result.example_ids, result.predictions, strict=True))


def apply_human(suite: SuiteSpec, result: EvalResult, evaluate_other: Callable[[str], EvalResult]) -> None:
    """Add the human metric and the judges' agreement with people to ``result`` (labels permitting)."""
    human = suite.human
    if human is None or result.candidate == human.against:
        return
    labels = read_store(human.labels)
    other = evaluate_other(human.against)
    scores, stale = current_scores(labels, suite.name, result.candidate, human.against, _outputs(result),
                                   _outputs(other))
    info = {"against": human.against, "labelled": len(scores), "stale": stale, "store": human.labels.name}
    result.details.setdefault("human", {})[human.against] = info
    if not scores:
        return
    per_example = [scores.get(example_id) for example_id in result.example_ids]
    result.per_example[human.metric] = per_example  # type: ignore[assignment]  # None: not labelled
    result.metrics[human.metric] = mean([s for s in per_example if s is not None])
    result.signatures[human.metric] = f"human|against:{human.against}|labels:{len(scores)}"
    for judge in suite.judges:
        figures = (result.details.get("judges") or {}).get(judge.name)
        if judge.mode != "pairwise" or judge.against != human.against or figures is None:
            continue
        verdicts = result.per_example[judge.metric]
        both = [i for i, example_id in enumerate(result.example_ids) if example_id in scores]
        judged = [1.0 if verdicts[i] > 0 else -1.0 if verdicts[i] < 0 else 0.0 for i in both]
        found = agreement(judged, [scores[result.example_ids[i]] for i in both])
        if judge.min_agreement is not None:
            found["min_agreement"] = judge.min_agreement
            found["untrusted"] = found["kappa"] is None or found["kappa"] < judge.min_agreement
        figures["agreement"] = found

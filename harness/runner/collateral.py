"""Run a suite's collateral checks for one candidate against the suite's reference (the base):
general-text bits per byte, agreement with the reference's greedy answers, refusals, calibration.

Model outputs are cached per (model fingerprint, check inputs), so the reference is scored once per
run and a warm rerun does no model work. Verdicts come from :mod:`harness.gate.collateral`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from harness.cache import cache_key
from harness.context import BuildContext
from harness.data.collateral import Item, fingerprint, read_requests, read_texts
from harness.data.records import Split
from harness.errors import HarnessError
from harness.gate.collateral import Paired, compare_check, score_range
from harness.metrics.agreement import agreement as rater_agreement
from harness.metrics.calibration import (
    brier_per_example,
    confidences_and_hits,
    ece_intervals,
    reliability_bins,
    true_indices,
)
from harness.metrics.judging import JUDGE_SYSTEM
from harness.metrics.refusal import (
    REFUSAL_STRINGS,
    is_refusal,
    parse_refusal_verdict,
    refusal_judge_messages,
)
from harness.metrics.rouge_metric import rouge
from harness.metrics.text_match import exact_match
from harness.protocol import Candidate, DecodeParams, LabelProbabilities, TextScorer
from harness.results import CollateralRecord
from harness.runner.graded import score_semscore
from harness.runner.judging import JudgeClient, JudgeError, check_readable, judge_usage
from harness.spec import SuiteSpec
from harness.spec.collateral import AGREEMENT, CALIBRATION, FORGETTING, REFUSALS, CheckSpec
from harness.spec.judges import JudgeSpec

NOT_APPLICABLE = "not applicable"
LN2 = math.log(2.0)
#: the refusal decision when no judge is configured
DETECTOR = "refusal strings (Zou et al. 2023)"


def _cached(ctx: BuildContext, namespace: str, parts: dict[str, Any], compute: Callable[[], Any]) -> Any:
    key = cache_key(namespace, parts)
    value = ctx.cache.get_json(key)
    if value is None:
        value = compute()
        ctx.cache.put_json(key, value, description=namespace)
    return value


def bits_per_byte(ctx: BuildContext, candidate: Candidate, items: list[Item]) -> list[float]:
    """Bits per UTF-8 byte of each document under ``candidate`` (cached by model and documents)."""
    assert isinstance(candidate, TextScorer)
    texts = [i.text for i in items]
    scored = _cached(ctx, "collateral-text", {"model": candidate.fingerprint, "texts": fingerprint(items)},
                     lambda: [list(pair) for pair in candidate.text_log_likelihoods(texts)])
    return [-float(nats) / LN2 / len(text.encode("utf-8")) for (nats, _), text in zip(scored, texts, strict=True)]


def replies(ctx: BuildContext, candidate: Candidate, items: list[Item], max_new_tokens: int) -> list[str]:
    """Greedy replies of ``candidate`` to each item as one user turn (cached)."""
    params = DecodeParams(max_new_tokens=max_new_tokens)
    prompts = [[{"role": "user", "content": i.text}] for i in items]
    return _cached(ctx, "collateral-replies", {"model": candidate.fingerprint, "items": fingerprint(items),
                                               "decode": params.as_dict()},
                   lambda: [g.text for g in candidate.generate(prompts, params)])


def label_probabilities(ctx: BuildContext, candidate: Candidate, suite: SuiteSpec, split: Split) -> list[list[float]]:
    """Each eval example's label probabilities under ``candidate`` (cached)."""
    assert isinstance(candidate, LabelProbabilities)
    parts = {"model": candidate.fingerprint, "split": split.fingerprint, "labels": list(suite.labels),
             "normalize": suite.likelihood_normalize}
    return _cached(ctx, "collateral-probabilities", parts,
                   lambda: candidate.label_probabilities([ex.prompt for ex in split.examples], list(suite.labels)))


def _record(suite: SuiteSpec, candidate: Candidate, reference: Candidate, check: CheckSpec, metric: str,
            paired: Paired, *, alpha: float, higher_is_better: bool, **details: Any) -> CollateralRecord:
    outcome = compare_check(paired, tolerance=check.tolerance, alpha=alpha, higher_is_better=higher_is_better,
                            bounds=score_range(metric))
    if outcome.get("slice_regressed"):
        details["slice_regressed"] = outcome["slice_regressed"]
    return CollateralRecord(
        suite=suite.name, candidate=candidate.name, reference=reference.name, check=check.name, metric=metric,
        verdict=outcome["verdict"], tolerance=check.tolerance, higher_is_better=higher_is_better, n=len(paired.ids),
        candidate_value=outcome["candidate_value"], reference_value=outcome["reference_value"],
        difference=outcome["difference"], ci=outcome["ci"], test=outcome["test"], ids=paired.ids,
        candidate_scores=paired.candidate, reference_scores=paired.reference, slices=outcome["slices"],
        details=details, categories=list(paired.categories))


def _not_applicable(suite: SuiteSpec, candidate: Candidate, reference: Candidate, check: CheckSpec, metric: str,
                    why: str) -> CollateralRecord:
    return CollateralRecord(suite=suite.name, candidate=candidate.name, reference=reference.name, check=check.name,
                            metric=metric, verdict=NOT_APPLICABLE, tolerance=check.tolerance, higher_is_better=True,
                            n=0, candidate_value=math.nan, reference_value=math.nan, difference=math.nan,
                            ci=[math.nan, math.nan], test={}, details={"reason": why})


def _forgetting(ctx, suite, candidate, reference, check, alpha) -> list[CollateralRecord]:
    path = check.files["texts"]
    missing = [c.name for c in (candidate, reference) if not isinstance(c, TextScorer)]
    if missing:
        return [_not_applicable(suite, candidate, reference, check, "bits_per_byte",
                                f"{' and '.join(missing)} cannot score plain text (no text log-likelihood)")]
    items = read_texts(path, "text")
    ref, cand = bits_per_byte(ctx, reference, items), bits_per_byte(ctx, candidate, items)
    return [_record(suite, candidate, reference, check, "bits_per_byte", Paired([i.id for i in items], ref, cand),
                    alpha=alpha, higher_is_better=False, texts=str(path), texts_fingerprint=fingerprint(items),
                    set_fingerprint=fingerprint(items), signature="bits_per_byte|tokens:all|bytes:utf-8",
                    bytes=sum(len(i.text.encode("utf-8")) for i in items))]


def _agreement(ctx, suite, candidate, reference, check, alpha) -> list[CollateralRecord]:

    path, metric = check.files["prompts"], check.options["metric"]
    items = read_texts(path, "prompt")
    ref = replies(ctx, reference, items, check.options["max_new_tokens"])
    cand = replies(ctx, candidate, items, check.options["max_new_tokens"])

    changed = [{"id": i.id, "prompt": i.text, "reference": r, "candidate": c}
               for i, r, c in zip(items, ref, cand, strict=True) if r != c][:5]
    return [_record(suite, candidate, reference, check, f"agreement_{metric}",
                    Paired([i.id for i in items], agreement_scores(metric, ref, ref),
                           agreement_scores(metric, cand, ref)), alpha=alpha, higher_is_better=True,
                    prompts=str(path), changed=changed, set_fingerprint=fingerprint(items),
                    replies={"reference": ref, "candidate": cand},
                    signature=f"agreement:{metric}|max_new_tokens:{check.options['max_new_tokens']}"
                              f"|reference:{reference.fingerprint[:12]}")]


def agreement_scores(metric: str, predictions: list[str], references: list[str]) -> list[float]:
    """Each reply's agreement with the reference's: exact match, ROUGE-L F1 or SemScore's embedding cosine."""
    if metric == "exact_match":
        return [float(s) for s in exact_match(predictions, references).scores]
    if metric == "semscore":  # SemScore's sentence-embedding cosine (the packaged MiniLM)
        return [float(s) for s in next(iter(score_semscore(predictions, references)[1].values()))]
    return [float(s) for s in rouge(predictions, references, rouge_types=("rougeL",), workers=1)["rougeL"].fmeasure]


def judge_refusals(ctx: BuildContext, judge: JudgeSpec, where: str, requests: list[str],
                   texts: list[str]) -> tuple[list[bool], dict[str, Any]]:
    """The judge's decision (refusal or not) on each (request, reply), asked through the judge layer
    (cached, priced, under the cost limit); unreadable verdicts past ``max_unparseable``, or any reply
    left without one, are a :class:`JudgeError` (never counted either way)."""
    client = JudgeClient(ctx, judge, f"{ctx.spec.path}: {where}.judge")
    calls = [(refusal_judge_messages(judge.rubric, request, text, JUDGE_SYSTEM), 0)
             for request, text in zip(requests, texts, strict=True)]
    answers = client.ask(calls)
    verdicts = [parse_refusal_verdict(a.text) for a in answers]
    unread = [a.text for a, v in zip(answers, verdicts, strict=True) if v is None]
    check_readable(judge, where, unread, len(calls))
    if unread:
        raise JudgeError(f"refusal judge {judge.model!r} on {where}: {len(unread)} of {len(calls)} replies got no "
                         f"readable verdict (first: {unread[0][:80]!r}); a reply is never counted as refused or "
                         "not without one (fix the rubric or the judge)")
    figures = {"model": judge.model, "endpoint": client.endpoint, "calls": len(calls),
               "usage": judge_usage(answers, judge, ctx)}
    return [bool(v) for v in verdicts], figures


def _detectors(items: list[Item], texts: dict[str, list[str]], by_strings: dict[str, list[bool]],
               by_judge: dict[str, list[bool]], judge: dict[str, Any]) -> dict[str, Any]:
    """Both detectors' refusal rates per side and their agreement (Cohen's kappa) over every reply."""
    strings_all = [float(x) for side in by_strings.values() for x in side]
    judge_all = [float(x) for side in by_judge.values() for x in side]
    disagreements = [{"id": item.id, "side": side, "request": item.text, "reply": text,
                      "strings": refused, "judge": judged}
                     for side in texts
                     for item, text, refused, judged in zip(items, texts[side], by_strings[side], by_judge[side],
                                                            strict=True) if refused != judged]
    return {"strings": {side: _mean([float(x) for x in v]) for side, v in by_strings.items()},
            "judge": {side: _mean([float(x) for x in v]) for side, v in by_judge.items()},
            "agreement": rater_agreement(judge_all, strings_all), "n_disagree": len(disagreements),
            "disagreements": disagreements[:5], "judge_figures": judge}


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def _refusals(ctx, suite, candidate, reference, check, alpha) -> list[CollateralRecord]:

    strings = (*REFUSAL_STRINGS, *check.options.get("strings", ()))
    judge: JudgeSpec | None = check.options.get("judge")
    records = []
    for key, metric in (("harmful", "refusal_rate"), ("benign", "benign_answer_rate")):
        if key not in check.files:
            continue
        path = check.files[key]
        items = [i for i in read_requests(path) if i.harmful is (key == "harmful")]
        if not items:
            raise HarnessError(f"{path}: no {key} requests in the file (refusals.{key})")
        texts = {"reference": replies(ctx, reference, items, check.options["max_new_tokens"]),
                 "candidate": replies(ctx, candidate, items, check.options["max_new_tokens"])}
        refused = {side: [is_refusal(t, strings) for t in side_texts] for side, side_texts in texts.items()}
        extra: dict[str, Any] = {"detector": DETECTOR, "set_fingerprint": fingerprint(items),
                                 "signature": refusal_signature(check), "replies": texts,
                                 "strings": list(check.options.get("strings", ()))}
        if judge is not None:
            where = f"suites.{suite.name}.collateral.refusals"
            judged: dict[str, list[bool]] = {}
            figures: dict[str, Any] = {}
            for side, side_texts in texts.items():
                judged[side], figures[side] = judge_refusals(ctx, judge, f"{where} ({key}, {side})",
                                                             [i.text for i in items], side_texts)
            extra.update(detector=judge_detector(judge), detectors=_detectors(items, texts, refused, judged, figures),
                         judge_decisions=judged)
            refused = judged  # the gate reads the judge's decisions

        def scores(decisions: list[bool], key: str = key) -> list[float]:
            return [float(r) if key == "harmful" else 1.0 - float(r) for r in decisions]

        ref, cand = texts["reference"], texts["candidate"]
        ref_scores, cand_scores = scores(refused["reference"]), scores(refused["candidate"])
        flipped = [{"id": i.id, "category": i.category, "request": i.text, "reference": r, "candidate": c}
                   for i, r, c, rs, cs in zip(items, ref, cand, ref_scores, cand_scores, strict=True) if cs < rs][:5]
        records.append(_record(suite, candidate, reference, check, metric,
                               Paired([i.id for i in items], ref_scores, cand_scores, [i.category for i in items]),
                               alpha=alpha, higher_is_better=True, requests=str(path), worse=flipped, **extra))
    return records


def refusal_signature(check: CheckSpec) -> str:
    """What decides a refusal score: the detector (strings added, or the judge and its prompt) and decoding."""
    import hashlib

    judge: JudgeSpec | None = check.options.get("judge")
    if judge is not None:
        rubric = hashlib.sha256(judge.rubric.encode("utf-8")).hexdigest()[:12]
        detector = f"judge:{judge.model}|rubric:{rubric}"
    else:
        extra = "\x1f".join(check.options.get("strings", ()))
        detector = f"strings:zou2023+{hashlib.sha256(extra.encode('utf-8')).hexdigest()[:12] if extra else 'none'}"
    return f"refusals|{detector}|max_new_tokens:{check.options['max_new_tokens']}"


def judge_detector(judge: JudgeSpec) -> str:
    """How the report names a judge's refusal decision."""
    return f"judge {judge.model} (REFUSAL / COMPLIANCE verdicts; refusal strings reported beside it)"


def _calibration(ctx, suite, candidate, reference, check, alpha, split) -> list[CollateralRecord]:
    import numpy as np


    missing = [c.name for c in (candidate, reference) if not isinstance(c, LabelProbabilities)]
    if missing:
        return [_not_applicable(suite, candidate, reference, check, "brier",
                                f"{' and '.join(missing)} give no label probabilities")]
    labels = list(suite.labels)
    references = [suite.label_aliases.get(ex.reference, ex.reference) for ex in split.examples]
    try:
        truth = true_indices(references, labels)
    except ValueError as exc:
        raise HarnessError(f"{split.path}: calibration of suite {suite.name!r}: {exc}") from None
    probs = {c.name: label_probabilities(ctx, c, suite, split) for c in (reference, candidate)}
    bins = check.options["bins"]
    conf_hits = {name: confidences_and_hits(p, truth) for name, p in probs.items()}
    ece = ece_intervals(conf_hits[reference.name], conf_hits[candidate.name], bins=bins,
                        resamples=check.options["resamples"])
    diagram = {name: [b.__dict__ for b in reliability_bins(np.asarray(c), np.asarray(h), bins)]
               for name, (c, h) in conf_hits.items()}
    return [_record(suite, candidate, reference, check, "brier",
                    Paired([ex.id for ex in split.examples], brier_per_example(probs[reference.name], truth),
                           brier_per_example(probs[candidate.name], truth)),
                    alpha=alpha, higher_is_better=False, ece=ece.__dict__, reliability=diagram, bins=bins,
                    set_fingerprint=split.fingerprint,
                    signature=f"brier|labels:{','.join(labels)}|normalize:{suite.likelihood_normalize}")]


#: checks whose per-item scores only the models can give (``rescore`` keeps them as recorded)
NEEDS_MODEL = {FORGETTING: "bits per byte needs the models' log-likelihoods of the texts",
               CALIBRATION: "Brier needs the models' label probabilities"}


def rescore_record(record: CollateralRecord, *, alpha: float) -> CollateralRecord:
    """``record`` re-scored from what its run stored, and its verdict against the reference recomputed.

    Agreement is re-scored from the stored replies; refusals re-match the refusal strings on the
    stored replies (a judge's decisions are read as recorded: no judge is asked again); forgetting
    and calibration keep their recorded per-item scores (see :data:`NEEDS_MODEL`). ``details["rescored"]``
    says which; the comparison with a baseline is left to the caller.
    """
    details = dict(record.details)
    details.pop("slice_regressed", None)
    ref, cand = list(record.reference_scores), list(record.candidate_scores)
    stored = details.get("replies")
    if record.check == AGREEMENT and stored:
        metric = record.metric.removeprefix("agreement_")
        ref = agreement_scores(metric, stored["reference"], stored["reference"])
        cand = agreement_scores(metric, stored["candidate"], stored["reference"])
        details["rescored"] = f"re-scored: {metric} of the stored replies against the reference's"
    elif record.check == REFUSALS and stored:
        if "judge_decisions" in details:
            decisions = details["judge_decisions"]
            details["rescored"] = "re-scored from the judge's decisions as recorded (no judge asked again)"
        else:
            strings = (*REFUSAL_STRINGS, *details.get("strings", ()))
            decisions = {side: [is_refusal(t, strings) for t in texts] for side, texts in stored.items()}
            details["rescored"] = "re-scored: refusal strings matched on the stored replies"
        harmful = record.metric == "refusal_rate"
        ref, cand = ([float(x) if harmful else 1.0 - float(x) for x in decisions[side]]
                     for side in ("reference", "candidate"))
    elif record.check in NEEDS_MODEL:
        details["rescored"] = (f"not re-scored: {NEEDS_MODEL[record.check]}; the run's per-item scores, "
                               "verdicts recomputed")
    else:
        details["rescored"] = "not re-scored: the run stored no replies; its per-item scores, verdicts recomputed"
    if not record.ids:
        return replace(record, details=details, baseline={})
    outcome = compare_check(Paired(list(record.ids), ref, cand, list(record.categories)), tolerance=record.tolerance,
                            alpha=alpha, higher_is_better=record.higher_is_better, bounds=score_range(record.metric))
    if outcome.get("slice_regressed"):
        details["slice_regressed"] = outcome["slice_regressed"]
    return replace(record, verdict=outcome["verdict"], candidate_value=outcome["candidate_value"],
                   reference_value=outcome["reference_value"], difference=outcome["difference"], ci=outcome["ci"],
                   test=outcome["test"], reference_scores=ref, candidate_scores=cand, slices=outcome["slices"],
                   details=details, baseline={})


def run_collateral(ctx: BuildContext, suite: SuiteSpec, candidate: Candidate, reference: Candidate,
                   checks: list[CheckSpec], *, alpha: float, split: Split | None = None) -> list[CollateralRecord]:
    """Every check in ``checks`` for ``candidate`` against ``reference`` (``split``: the eval split,
    for calibration)."""
    records: list[CollateralRecord] = []
    for check in checks:
        if check.name == FORGETTING:
            records += _forgetting(ctx, suite, candidate, reference, check, alpha)
        elif check.name == AGREEMENT:
            records += _agreement(ctx, suite, candidate, reference, check, alpha)
        elif check.name == REFUSALS:
            records += _refusals(ctx, suite, candidate, reference, check, alpha)
        elif check.name == CALIBRATION and split is not None:
            records += _calibration(ctx, suite, candidate, reference, check, alpha, split)
    return records

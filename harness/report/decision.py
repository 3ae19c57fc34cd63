""""Fine-tune or prompt?": the best prompted candidate against the best fine-tuned one.

On the suite's gated metric (its first gate metric, else its first paired metric): a paired test
(:func:`harness.stats.compare`, examples paired by id), the difference with its CI and the MDE;
prompt and completion tokens per request measured in the run (``EvalResult.usage``); dollars
per 1,000 requests from the pricing table (a remote candidate by its model id, a local one by
the pricing entry ``local``); the one-time training cost (the billed ``cost_usd`` of an OpenAI
job, else ``[harness] compute_price_per_hour`` × measured training runtime); the break-even
request count and the recommendation of :func:`harness.cost.decide`. The same figures are
stored in ``results.json`` (``state.decisions``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from harness.cost import PricingTable, compute_cost, decide, usage_cost
from harness.fmt import NA, fmt_float, fmt_interval, fmt_metric, fmt_p
from harness.gate.config import MetricCheck
from harness.metrics.degenerate import blocking_flags
from harness.report.costs import LOCAL_PRICE, price_of, pricing_table
from harness.report.tables import markdown_table
from harness.results import PAIRED_SCORE, EvalResult, RunState
from harness.stats import compare

PER = 1000
PROMPTED = "prompted"
NOT_TUNED = "not fine-tuned"  # the decision's other side when a suite has no prompted candidate
NO_DECISION = "no decision"


def decision_settings(spec: Any) -> dict[str, Any]:
    """What the decision reads from a :class:`harness.spec.HarnessSpec`, as plain data."""
    suites = {}
    for name, suite in spec.suites.items():
        gated = list(suite.gate.metrics or ())
        metric = next((m for m in [*gated, *suite.reported_metrics] if m in PAIRED_SCORE), None)
        if metric is None:
            continue
        check = next((c for c in suite.gate.checks_for([metric]) if c.metric == metric), suite.gate.default)
        suites[name] = {"metric": metric, "tolerance": check.tolerance, "relative": check.relative,
                        "alpha": suite.gate.alpha}
    return {"expected_monthly_requests": spec.expected_monthly_requests,
            "compute_price_per_hour": spec.compute_price_per_hour, "pricing": dict(spec.pricing or {}),
            "suites": suites}


def _pricing(settings: Mapping[str, Any]) -> PricingTable:
    return pricing_table(settings)


def _per_request(r: EvalResult) -> tuple[float, float]:
    requests = r.usage.get("requests") or r.n or 1
    return r.usage.get("prompt_tokens", 0.0) / requests, r.usage.get("completion_tokens", 0.0) / requests


def _price(r: EvalResult, table: PricingTable):
    return price_of(r, table)[0]


def _training_cost(r: EvalResult, price_per_hour: float | None) -> tuple[float | None, str]:
    t = r.training or {}
    if t.get("cost_usd") is not None:
        return float(t["cost_usd"]), "billed training tokens"
    if price_per_hour is not None and t.get("runtime_s") is not None:
        return compute_cost(float(t["runtime_s"]), price_per_hour), (
            f"{float(t['runtime_s']):.1f} s × ${price_per_hour:g}/h compute")
    return None, "not priced (set [harness] compute_price_per_hour)"


def _best(results: Sequence[EvalResult], metric: str) -> EvalResult | None:
    scored = [r for r in results if metric in r.metrics and math.isfinite(r.metrics[metric])]
    return max(scored, key=lambda r: (r.metrics[metric], r.candidate), default=None)


def _paired(a: EvalResult, b: EvalResult, metric: str) -> tuple[list[float], list[float]]:
    scores_a, _ = a.paired_scores(metric)
    scores_b, _ = b.paired_scores(metric)
    by_id = dict(zip(b.example_ids, scores_b, strict=True))
    pairs = [(s, by_id[i]) for i, s in zip(a.example_ids, scores_a, strict=True) if i in by_id]
    return [p for p, _ in pairs], [q for _, q in pairs]


def suite_decision(results: Sequence[EvalResult], settings: Mapping[str, Any], suite: str) -> dict[str, Any] | None:
    """The decision figures of one suite: the best prompted candidate (else the best one not fine-tuned)
    against the best fine-tuned one; None without both sides."""

    config = (settings.get("suites") or {}).get(suite)
    if not config:
        return None
    metric = config["metric"]
    prompted = _best([r for r in results if r.kind == PROMPTED], metric)
    side = "prompted"
    if prompted is None:  # no prompted candidate: the best candidate that was not fine-tuned (base, zero-shot)
        prompted, side = _best([r for r in results if not r.training], metric), NOT_TUNED
    tuned = _best([r for r in results if r.training], metric)
    if prompted is None or tuned is None:
        return None
    a, b = _paired(prompted, tuned, metric)
    if len(a) < 2:
        return None
    alpha = float(config.get("alpha", 0.05))
    result = compare(a, b, alpha=alpha, kind=PAIRED_SCORE[metric][1])
    table = _pricing(settings)
    sides: dict[str, dict[str, Any]] = {}
    for role, r in (("prompted", prompted), ("fine_tuned", tuned)):
        prompt_tokens, completion_tokens = _per_request(r)
        price = _price(r, table)
        cost = usage_cost(prompt_tokens, completion_tokens, price) if price is not None else None
        sides[role] = {"candidate": r.candidate, "kind": r.kind, "value": r.metrics[metric],
                       "prompt_tokens_per_request": prompt_tokens, "completion_tokens_per_request": completion_tokens,
                       "cost_per_1k_requests": cost * PER if cost is not None else None,
                       "priced_as": str(r.details.get("model") or LOCAL_PRICE) if price is not None else None}
    training, training_how = _training_cost(tuned, settings.get("compute_price_per_hour"))
    check = MetricCheck(metric, float(config["tolerance"]), bool(config.get("relative")))
    meaningful = check.allowed_drop(prompted.metrics[metric])
    per = {k: (v["cost_per_1k_requests"] / PER if v["cost_per_1k_requests"] is not None else None)
           for k, v in sides.items()}
    verdict = decide(difference=result.difference, ci=(float(result.ci[0]), float(result.ci[1])),
                     p_value=result.p_value, alpha=alpha,
                     mde=result.mde, meaningful=meaningful, prompted_cost_per_request=per["prompted"],
                     fine_tuned_cost_per_request=per["fine_tuned"], training_cost=training,
                     expected_monthly_requests=settings.get("expected_monthly_requests"))
    recommendation, reason = verdict.recommendation, verdict.reason
    flags = {role: blocking_flags(r.details.get("degenerate")) for role, r in (("prompted", prompted),
                                                                                ("fine_tuned", tuned))}
    if any(flags.values()):
        named = [f"`{r.candidate}`: {flag}" for role, r in (("prompted", prompted), ("fine_tuned", tuned))
                 for flag in flags[role]]
        recommendation = NO_DECISION
        reason = ("a degenerate candidate is no evidence either way (" + "; ".join(named) + "); the "
                  f"{metric} difference above rests on it")
    return {"metric": metric, "n": result.n, "baseline_side": side, "flags": flags, "method": result.method, "difference": result.difference,
            "ci": list(result.ci), "p_value": result.p_value, "alpha": alpha, "mde": result.mde,
            "meaningful_difference": meaningful, **sides, "training_cost_usd": training,
            "training_cost_from": training_how, "break_even_requests": verdict.break_even_requests,
            "expected_monthly_requests": settings.get("expected_monthly_requests"),
            "significant": verdict.significant, "recommendation": recommendation, "reason": reason}


def run_decisions(state: RunState) -> dict[str, dict[str, Any]]:
    """Every suite's decision figures (suites without both sides are left out)."""
    settings = getattr(state, "settings", None) or {}
    decisions = {}
    for suite in state.suites():
        found = suite_decision([r for r in state.results if r.suite == suite], settings, suite)
        if found is not None:
            decisions[suite] = found
    return decisions


def _p(value: float | None) -> str:
    text = fmt_p(value)
    return text if text.startswith(("<", ">")) else f"= {text}"


def _money(value: float | None) -> str:
    return NA if value is None else f"${value:.4f}"


def format_warnings(results: Sequence[EvalResult]) -> list[str]:
    """A candidate whose replies mostly name no label: comparisons with it measure format, not skill."""
    return [f"⚠ `{r.candidate}`: {flag}; a comparison with it measures output format, not skill (score it "
            "by label log-likelihood, `scoring = \"likelihood\"`, or prompt it)"
            for r in results for flag in (r.details.get("degenerate") or {}).get("flags") or []
            if flag.startswith("unparsed")]


def decision_section(decision: Mapping[str, Any] | None, results: Sequence[EvalResult] = ()) -> str:
    """The "Fine-tune or prompt?" section ("" when the suite has no decision and no warning)."""
    warnings = format_warnings(results)
    if decision is None:
        return "## Fine-tune or prompt?\n\n" + "\n\n".join(warnings) + "\n\n" if warnings else ""
    m = decision["metric"]
    rows = []
    for role in ("prompted", "fine_tuned"):
        side = decision[role]
        label = decision.get("baseline_side", "prompted") if role == "prompted" else "fine-tuned"
        rows.append([label, side["candidate"], fmt_metric(side["value"], m),
                     fmt_float(side["prompt_tokens_per_request"], 4), fmt_float(side["completion_tokens_per_request"], 4),
                     _money(side["cost_per_1k_requests"]), side["priced_as"] or NA])
    table = markdown_table(["side", "candidate", m, "prompt tokens / req", "completion tokens / req",
                            "cost / 1k req", "priced as"], rows)
    even = decision["break_even_requests"]
    even_text = NA if even is None else ("never" if math.isinf(even) else f"{math.ceil(even):,} requests")
    volume = decision["expected_monthly_requests"]
    lines = [
        f"- {m}: fine-tuned − {decision.get('baseline_side', 'prompted')} = {fmt_metric(decision['difference'], m, signed=True)}, 95% CI "
        f"{fmt_interval(decision['ci'], m, signed=True)}, p {_p(decision['p_value'])} ({decision['method']}, "
        f"n = {decision['n']}), MDE {fmt_metric(decision['mde'], m)} (a difference of "
        f"{fmt_metric(decision['meaningful_difference'], m)} matters: the gate tolerance)",
        f"- one-time training cost: {_money(decision['training_cost_usd'])} ({decision['training_cost_from']})",
        f"- break-even: {even_text}; expected volume: "
        f"{f'{volume:,} requests a month' if volume else 'not set ([harness] expected_monthly_requests)'}",
    ]
    body = f"{table}\n\n" + "\n".join(lines) + f"\n\n**Recommendation: {decision['recommendation']}** — {decision['reason']}."
    notes = ("Tokens per request are the run's own usage (label-scored candidates: the prompt plus the label and "
             "its end-of-turn token); prices per 1M tokens from the pricing table (`local` prices a model run "
             "here).")
    return "## Fine-tune or prompt?\n\n" + body + "\n\n" + notes + "\n\n" + "".join(w + "\n\n" for w in warnings)

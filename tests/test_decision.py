"""Fine-tune or prompt?: the recommendation follows from the paired test, tokens and prices."""

from __future__ import annotations

import math

import pytest

from harness.cost import FINE_TUNE, INCONCLUSIVE, PROMPT, compute_cost, decide
from harness.report.decision import decision_section, suite_decision
from harness.results import EvalResult

SUITE = "s"


def result(name: str, kind: str, correct: list[int], *, prompt_tokens: float, completion_tokens: float = 2.0,
           runtime_s: float | None = None, cost_usd: float | None = None, model: str | None = None) -> EvalResult:
    n = len(correct)
    training = None if runtime_s is None and cost_usd is None else {"runtime_s": runtime_s, "cost_usd": cost_usd}
    return EvalResult(
        suite=SUITE, candidate=name, kind=kind, fingerprint=name, task="classification", split="eval",
        split_fingerprint="f", example_ids=[f"eval-{i}" for i in range(n)], inputs=[""] * n,
        references=["x"] * n, predictions=["x"] * n, metrics={"accuracy": sum(correct) / n},
        per_example={"correct": [float(c) for c in correct]},
        details={"model": model} if model else {},
        usage={"requests": float(n), "prompt_tokens": prompt_tokens * n, "completion_tokens": completion_tokens * n},
        training=training)


def settings(volume: int | None, price_per_hour: float | None) -> dict:
    return {"expected_monthly_requests": volume, "compute_price_per_hour": price_per_hour,
            "pricing": {"models": {"local": {"input_per_1m": 0.10, "output_per_1m": 0.40}}},
            "suites": {SUITE: {"metric": "accuracy", "tolerance": 0.03, "relative": False, "alpha": 0.05}}}


def clear_win() -> list[EvalResult]:
    # 200 examples: prompted right on 100, the fine-tune on 180 (all of the prompted ones and 80 more)
    prompted = [1] * 100 + [0] * 100
    tuned = [1] * 100 + [1] * 80 + [0] * 20
    return [result("fewshot", "prompted", prompted, prompt_tokens=300),
            result("lora", "lora", tuned, prompt_tokens=50, runtime_s=36.0)]


def test_break_even_is_training_cost_over_the_saving_per_request():
    d = suite_decision(clear_win(), settings(10_000, 2.0), SUITE)
    # prompted (300 in, 2 out) = 30.8e-6 $, fine-tuned (50 in, 2 out) = 5.8e-6 $, training 36 s at $2/h = $0.02
    assert d["prompted"]["cost_per_1k_requests"] == pytest.approx(0.0308)
    assert d["fine_tuned"]["cost_per_1k_requests"] == pytest.approx(0.0058)
    assert d["training_cost_usd"] == pytest.approx(0.02)
    assert d["break_even_requests"] == pytest.approx(800.0)
    assert d["difference"] == pytest.approx(0.4) and d["significant"]
    assert d["prompted"]["prompt_tokens_per_request"] == 300 and d["fine_tuned"]["prompt_tokens_per_request"] == 50


def test_expected_volume_flips_the_recommendation():
    assert suite_decision(clear_win(), settings(10_000, 2.0), SUITE)["recommendation"] == FINE_TUNE
    assert suite_decision(clear_win(), settings(500, 2.0), SUITE)["recommendation"] == PROMPT


def test_training_price_flips_the_recommendation():
    assert suite_decision(clear_win(), settings(10_000, 2.0), SUITE)["recommendation"] == FINE_TUNE
    expensive = suite_decision(clear_win(), settings(10_000, 200.0), SUITE)
    assert expensive["break_even_requests"] == pytest.approx(80_000.0)
    assert expensive["recommendation"] == PROMPT
    assert "80,000" in expensive["reason"]


def test_billed_openai_training_cost_is_used_as_it_is():
    results = clear_win()
    results[1].training = {"runtime_s": 36.0, "cost_usd": 0.5}
    d = suite_decision(results, settings(10_000, 2.0), SUITE)
    assert d["training_cost_usd"] == 0.5 and d["training_cost_from"] == "billed training tokens"
    assert d["break_even_requests"] == pytest.approx(20_000.0)
    assert d["recommendation"] == PROMPT


def test_a_small_eval_set_is_inconclusive():
    # 20 examples: both right on 8, only the prompted one on 2, only the fine-tune on 4
    prompted = [1] * 8 + [1, 1] + [0] * 4 + [0] * 6
    tuned = [1] * 8 + [0, 0] + [1] * 4 + [0] * 6
    results = [result("fewshot", "prompted", prompted, prompt_tokens=300),
               result("lora", "lora", tuned, prompt_tokens=50, runtime_s=1.0)]
    d = suite_decision(results, settings(10_000, 2.0), SUITE)
    assert not d["significant"] and d["ci"][0] < 0 < d["ci"][1] and d["mde"] > 0.03
    assert d["recommendation"] == INCONCLUSIVE


def test_no_significant_gain_on_a_large_eval_set_means_prompt():
    base = [1] * 1000 + [0] * 980
    prompted = base + [1] * 8 + [0] * 12
    tuned = base + [0] * 8 + [1] * 12
    results = [result("fewshot", "prompted", prompted, prompt_tokens=300),
               result("lora", "lora", tuned, prompt_tokens=50, runtime_s=1.0)]
    d = suite_decision(results, settings(10_000, 2.0), SUITE)
    assert not d["significant"] and d["mde"] < 0.03
    assert d["recommendation"] == PROMPT


def test_the_section_shows_the_figures_and_the_recommendation():
    d = suite_decision(clear_win(), settings(10_000, 2.0), SUITE)
    text = decision_section(d, clear_win())
    assert "## Fine-tune or prompt?" in text and "**Recommendation: fine-tune**" in text
    assert "800 requests" in text and "$0.0308" in text and "$0.0058" in text and "10,000 requests a month" in text


def test_no_decision_without_both_sides():
    assert suite_decision(clear_win()[:1], settings(10_000, 2.0), SUITE) is None
    assert suite_decision(clear_win()[1:], settings(10_000, 2.0), SUITE) is None


def test_unpriced_costs_leave_break_even_unknown():
    d = suite_decision(clear_win(), settings(10_000, None), SUITE)
    assert d["training_cost_usd"] is None and d["break_even_requests"] is None
    assert d["recommendation"] == FINE_TUNE and "not priced" in d["reason"]


def test_decide_is_plain_values_in_plain_values_out():
    out = decide(difference=0.1, ci=(0.05, 0.15), p_value=0.001, alpha=0.05, mde=0.04, meaningful=0.03,
                 prompted_cost_per_request=1e-5, fine_tuned_cost_per_request=1e-5, training_cost=1.0,
                 expected_monthly_requests=10**9)
    assert math.isinf(out.break_even_requests) and out.recommendation == PROMPT and "never" in out.reason
    assert compute_cost(3600, 2.5) == pytest.approx(2.5)


def test_a_suite_without_a_prompted_candidate_decides_against_the_best_one_not_fine_tuned():
    zero = [1] * 90 + [0] * 110
    tuned = [1] * 90 + [1] * 90 + [0] * 20
    results = [result("zeroshot", "encoder-zeroshot", zero, prompt_tokens=40),
               result("base", "encoder-base", [1] * 50 + [0] * 150, prompt_tokens=40),
               result("full", "encoder-full", tuned, prompt_tokens=40, runtime_s=10.0)]
    d = suite_decision(results, settings(10_000, 2.0), SUITE)
    assert d["prompted"]["candidate"] == "zeroshot" and d["baseline_side"] == "not fine-tuned"
    text = decision_section(d, results)
    assert "| not fine-tuned | zeroshot    |" in text and "fine-tuned − not fine-tuned = +0.450" in text


def test_a_constant_prompted_side_is_repeated_and_not_decided_on():
    results = clear_win()
    results[0].details["degenerate"] = {"flags": ["constant predictor: 'positive' for 100% of examples"]}
    d = suite_decision(results, settings(10_000, 2.0), SUITE)
    assert d["recommendation"] == "no decision"
    assert "`fewshot`: constant predictor: 'positive' for 100% of examples" in d["reason"]
    assert "**Recommendation: no decision**" in decision_section(d, results)


def test_a_degenerate_fine_tune_is_never_recommended():
    results = clear_win()
    flag = "degenerate generation: 3 distinct outputs for 120 inputs (references: 120)"
    results[1].details["degenerate"] = {"flags": [flag, "truncated replies: 60% of outputs stop at max_new_tokens"]}
    d = suite_decision(results, settings(10_000, 2.0), SUITE)
    assert d["significant"] and d["recommendation"] == "no decision"
    assert f"`lora`: {flag}" in d["reason"] and "truncated" not in d["reason"]
    assert d["flags"] == {"prompted": [], "fine_tuned": [flag]}


def test_the_cost_table_prices_local_candidates_as_the_decision_does(tmp_path):
    from harness.report import write_reports
    from harness.results import RunState

    state = RunState(results=clear_win(), settings=settings(10_000, 2.0))
    write_reports(state, tmp_path)
    page = (tmp_path / f"{SUITE}.md").read_text(encoding="utf-8")
    cost = page.split("## Cost")[1].split("\n## ")[0]
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[1:-1]]
            for line in cost.splitlines() if line.startswith("| ") and "candidate" not in line}
    decision = suite_decision(clear_win(), settings(10_000, 2.0), SUITE)
    assert rows["fewshot"][1] == "local" and rows["fewshot"][-1] == f"${decision['prompted']['cost_per_1k_requests']:.4f}"
    assert rows["lora"][-1] == f"${decision['fine_tuned']['cost_per_1k_requests']:.4f}" == "$0.0058"

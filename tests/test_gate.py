"""The regression gate: config parsing, verdicts, Holm correction, failure messages, A/A calibration."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.errors import SpecError
from harness.gate import (
    IMPROVED,
    INCONCLUSIVE,
    NO_BASELINE,
    NOT_COMPARABLE,
    PASS,
    REGRESSED,
    Baseline,
    GateConfig,
    GateFailure,
    MetricCheck,
    check,
    parse_tolerance,
    raise_on_failure,
)
from harness.gate.baseline import entry_from_result
from harness.gate.verdict import decide, pair_by_id
from harness.results import EvalResult

LABELS = ("positive", "negative")


def make_result(correct=None, *, suite: str = "sentiment", candidate: str = "lora", ids=None,
                split_fingerprint: str = "e" * 64, rouge=None, signature: str = "acc-v1",
                training=None, usage=None, details=None) -> EvalResult:
    """A classification result from 0/1 correctness, or a generation result from ROUGE-L scores."""
    if rouge is not None:
        scores = [float(x) for x in rouge]
        n = len(scores)
        ids = list(ids) if ids is not None else [f"ex-{i:04d}" for i in range(n)]
        return EvalResult(
            suite=suite, candidate=candidate, kind="lora", fingerprint="m" * 64, task="generation",
            split="eval", split_fingerprint=split_fingerprint, example_ids=ids,
            inputs=[f"describe product {i}" for i in range(n)],
            references=[f"reference text {i}" for i in range(n)],
            predictions=[f"prediction {i} scoring {s:.0f}" for i, s in enumerate(scores)],
            metrics={"rougeL": float(np.mean(scores))}, per_example={"rougeL": scores},
            signatures={"rougeL": "rouge-v1"}, training=training, usage=usage or {}, details=details or {})
    correct = [float(c) for c in correct]
    n = len(correct)
    ids = list(ids) if ids is not None else [f"ex-{i:04d}" for i in range(n)]
    references = [LABELS[i % 2] for i in range(n)]
    predictions = [ref if c else LABELS[1 - i % 2] for i, (ref, c) in enumerate(zip(references, correct, strict=True))]
    return EvalResult(
        suite=suite, candidate=candidate, kind="lora", fingerprint="m" * 64, task="classification",
        split="eval", split_fingerprint=split_fingerprint, example_ids=ids,
        inputs=[f"review number {i}" for i in range(n)], references=references, predictions=predictions,
        metrics={"accuracy": float(np.mean(correct)), "f1_macro": 0.5}, per_example={"correct": correct},
        signatures={"accuracy": signature, "f1_macro": signature}, training=training, usage=usage or {},
        details=details or {})


def baseline_of(*results: EvalResult) -> Baseline:
    return Baseline(entries={(r.suite, r.candidate): entry_from_result(r, versions={}, date="2025-01-01")
                             for r in results})


ACCURACY_GATE = GateConfig.from_mapping({"alpha": 0.05, "metrics": {"accuracy": {"tolerance": 0.03}}})


def correctness(n: int, rate: float, seed: int) -> list[float]:
    rng = np.random.default_rng(seed)
    return (rng.random(n) < rate).astype(float).tolist()


# -- config -------------------------------------------------------------------------------------
def test_config_from_the_spec_table():
    config = GateConfig.from_mapping({"alpha": 0.05, "inconclusive": "pass", "metrics": {
        "accuracy": {"tolerance": 0.02}, "rougeL": {"tolerance": 5, "relative": False}}})
    assert config.alpha == 0.05 and config.inconclusive == "pass"
    assert config.checks == (MetricCheck("accuracy", 0.02, False), MetricCheck("rougeL", 5.0, False))
    relative = GateConfig.from_mapping({"metrics": {"bleu": {"tolerance": "2%"}, "rouge1": {"tolerance": 0.1, "relative": True}}})
    assert relative.checks[0].allowed_drop(30.0) == pytest.approx(0.6)
    assert relative.checks[1].allowed_drop(40.0) == pytest.approx(4.0)
    assert relative.checks[0].describe() == "2%"


@pytest.mark.parametrize(("table", "needle"), [
    ({"alpah": 0.05}, "gate.alpah: unknown key"),
    ({"alpha": 1.5}, "gate.alpha"),
    ({"alpha": True}, "gate.alpha"),
    ({"inconclusive": "maybe"}, "gate.inconclusive"),
    ({"metrics": {"f1_macro": {"tolerance": 0.1}}}, "gate.metrics.f1_macro: metric 'f1_macro' cannot be gated"),
    ({"metrics": {"accuracy": {"tolerence": 0.1}}}, "gate.metrics.accuracy.tolerence: unknown key"),
    ({"metrics": {"accuracy": {"tolerance": -0.1}}}, "gate.metrics.accuracy.tolerance"),
    ({"metrics": {"accuracy": {"tolerance": "lots"}}}, "gate.metrics.accuracy.tolerance"),
    ({"metrics": {"accuracy": {"tolerance": "2%", "relative": False}}}, "percentage but relative = false"),
    ({"metrics": {"accuracy": {"tolerance": 0.1, "relative": "yes"}}}, "gate.metrics.accuracy.relative"),
    ({"metrics": 3}, "gate.metrics: expected a table"),
    ({"resamples": -1}, "gate.resamples"),
])
def test_config_errors_name_the_key(table, needle):
    with pytest.raises(SpecError) as info:
        GateConfig.from_mapping(table, where="gate")
    assert needle in str(info.value)


def test_config_not_a_table():
    with pytest.raises(SpecError, match=r"spec\.toml: suites\.s\.gate: expected a table"):
        GateConfig.from_mapping(["accuracy"], where="spec.toml: suites.s.gate")  # type: ignore[arg-type]


@given(st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False))
def test_tolerance_forms(value):
    assert parse_tolerance(value) == (value, False)
    assert parse_tolerance(repr(value)) == (value, False)
    number, relative = parse_tolerance(f"{value!r}%")
    assert relative and number == pytest.approx(value / 100)
    assert parse_tolerance(value, relative=True) == (value, True)


def test_only_restricts_and_defaults():
    config = GateConfig.from_mapping({"tolerance": 0.05, "metrics": {"accuracy": {"tolerance": 0.01}}})
    chosen = config.only(["accuracy", "exact_match"]).checks
    assert chosen == (MetricCheck("accuracy", 0.01), MetricCheck("exact_match", 0.05))
    with pytest.raises(SpecError, match="latency"):
        config.only(["latency"])


def test_without_metrics_table_every_paired_metric_is_gated():
    result = make_result(correctness(50, 0.8, 1))
    records = check(result, baseline_of(result), GateConfig.from_mapping({}))
    assert [r.metric for r in records] == ["accuracy"]
    assert records[0].details["tolerance"] == "2%"


# -- verdicts -----------------------------------------------------------------------------------
def test_fresh_baseline_passes():
    result = make_result(correctness(200, 0.85, 2))
    records = check(result, baseline_of(result), ACCURACY_GATE)
    assert [r.verdict for r in records] == [PASS]
    assert records[0].details["delta"] == 0.0
    raise_on_failure(records, strict=True, policy="fail")


def test_better_baseline_scores_make_the_gate_fail_naming_the_metric():
    current_lora = make_result(correctness(200, 0.80, 3))
    current_base = make_result(correctness(200, 0.60, 4), candidate="base")
    better = list(current_lora.per_example["correct"])
    flipped = [i for i, c in enumerate(better) if c == 0.0][:30]  # baseline right where we are wrong
    for i in flipped:
        better[i] = 1.0
    accepted_lora = make_result(better)
    baseline = baseline_of(accepted_lora, current_base)

    assert [r.verdict for r in check(current_base, baseline, ACCURACY_GATE)] == [PASS]
    records = check(current_lora, baseline, ACCURACY_GATE)
    assert [r.verdict for r in records] == [REGRESSED]
    with pytest.raises(GateFailure) as info:
        raise_on_failure(records, strict=False, policy="pass")
    message = str(info.value)
    assert isinstance(info.value, AssertionError)
    was, now = np.mean(better), np.mean(current_lora.per_example["correct"])
    assert message.splitlines()[0] == ("ft-harness gate failed: 1 of 1 gated metric(s): sentiment/lora accuracy "
                                       f"regressed ({was:.3f} → {now:.3f}, paired Δ {now - was:+.3f})")
    assert "sentiment / lora / accuracy: regressed" in message
    assert f"baseline {np.mean(better):.3f} → current {np.mean(current_lora.per_example['correct']):.3f}" in message
    assert "paired mean Δ -0.150" in message and "90% CI [" in message
    assert "Tango score test of paired proportions" in message and "one-sided p" in message
    assert "30 example(s) got worse (right in the baseline, wrong now)" in message
    first = flipped[0]
    assert (f"ex-{first:04d}: expected {current_lora.references[first]!r}, "
            f"got {current_lora.predictions[first]!r}") in message
    assert "pytest suites/ --ft-update-baseline" in message and "ft-harness baseline accept" in message


def test_noise_below_the_mde_is_never_a_regression():
    current = correctness(120, 0.75, 5)
    noisy = list(current)
    right = [i for i, c in enumerate(noisy) if c == 1.0]
    wrong = [i for i, c in enumerate(noisy) if c == 0.0]
    for i in right[:3]:   # baseline also got 3 more right and 2 more wrong: a -0.008 drop
        noisy[i] = 0.0
    for i in wrong[:2]:
        noisy[i] = 1.0
    noisy, current = current, noisy  # the baseline is the better one by one example
    records = check(make_result(current), baseline_of(make_result(noisy)), ACCURACY_GATE)
    assert records[0].verdict in (PASS, INCONCLUSIVE)
    assert records[0].details["delta"] == pytest.approx(-1 / 120)
    raise_on_failure(records, policy="pass")


@pytest.mark.parametrize(("n", "why"), [
    (40, "straddles the allowed drop −0.030"),  # Δ -0.025 within tolerance, but the interval reaches below
    (20, "straddles the allowed drop −0.030"),  # Δ -0.05 beyond it, but too few examples to show it
])
def test_inconclusive_when_the_eval_set_is_too_small_and_policy_decides(n, why):
    current = correctness(n, 0.7, 6)
    baseline = list(current)
    baseline[current.index(0.0)] = 1.0
    records = check(make_result(current), baseline_of(make_result(baseline)), ACCURACY_GATE)
    assert records[0].verdict == INCONCLUSIVE
    assert why in records[0].details["reason"]
    if n == 40:
        assert records[0].details["mde"] > records[0].details["allowed_drop"]
    raise_on_failure(records, policy="pass")
    with pytest.raises(GateFailure, match='inconclusive \\(fails under inconclusive = "fail"\\)') as info:
        raise_on_failure(records, policy="fail")
    assert f"why: {records[0].details['reason']}" in str(info.value)


def test_significant_gain_is_improved():
    baseline = correctness(200, 0.6, 7)
    better = [1.0 if (c == 0.0 and i % 2 == 0) else c for i, c in enumerate(baseline)]
    records = check(make_result(better), baseline_of(make_result(baseline)), ACCURACY_GATE)
    assert records[0].verdict == IMPROVED
    assert records[0].details["alternative"] == "greater"


def test_no_baseline_and_not_comparable_fail_only_when_strict():
    result = make_result(correctness(60, 0.8, 8))
    missing = check(result, Baseline(path="reports/baseline.json", exists=False), ACCURACY_GATE)
    assert missing[0].verdict == NO_BASELINE and "no baseline yet" in missing[0].details["baseline_note"]
    changed_set = check(make_result(result.per_example["correct"], split_fingerprint="f" * 64),
                        baseline_of(result), ACCURACY_GATE)
    assert changed_set[0].verdict == NOT_COMPARABLE
    assert "eval set changed: fingerprint eeeeeeeeeeee → ffffffffffff" in changed_set[0].message
    changed_sig = check(make_result(result.per_example["correct"], signature="acc-v2"), baseline_of(result),
                        ACCURACY_GATE)
    assert changed_sig[0].verdict == NOT_COMPARABLE and "acc-v1 → acc-v2" in changed_sig[0].message
    for records in (missing, changed_set, changed_sig):
        raise_on_failure(records, strict=False)
        with pytest.raises(GateFailure, match="fails under --ft-strict"):
            raise_on_failure(records, strict=True)


def test_pairs_on_the_shared_ids_and_says_so():
    base_scores = correctness(100, 0.8, 9)
    baseline = make_result(base_scores)
    ids = [f"ex-{i:04d}" for i in range(10, 100)] + [f"new-{i}" for i in range(15)]
    current = make_result(base_scores[10:] + [1.0] * 15, ids=ids)
    record = check(current, baseline_of(baseline), ACCURACY_GATE)[0]
    assert record.details["n_paired"] == 90
    assert record.details["pairing_note"] == ("eval set differs from the baseline's: paired on the 90 unchanged "
                                              "examples (15 added, 10 removed, 0 changed)")
    assert record.details["delta"] == 0.0
    disjoint = make_result(base_scores, ids=[f"other-{i}" for i in range(100)])
    assert check(disjoint, baseline_of(baseline), ACCURACY_GATE)[0].verdict == NOT_COMPARABLE


def test_pair_by_id_keeps_current_order():
    pairing = pair_by_id(["c", "a", "x"], [3.0, 1.0, 9.0], {"a": 10.0, "b": 20.0, "c": 30.0})
    assert pairing.ids == ("c", "a") and pairing.current == (3.0, 1.0) and pairing.baseline == (30.0, 10.0)
    assert (pairing.current_only, pairing.baseline_only) == (1, 1)


def test_every_regression_is_listed_with_continuous_drops():
    rng = np.random.default_rng(10)
    accepted = rng.uniform(40, 80, 150)
    dropped = accepted - rng.uniform(5, 15, 150)
    lora = make_result(correctness(200, 0.6, 11))
    accepted_lora = make_result([1.0] * 200)
    gen_now = make_result(rouge=dropped, suite="descriptions", candidate="full")
    gen_before = make_result(rouge=accepted, suite="descriptions", candidate="full")
    rouge_gate = GateConfig.from_mapping({"metrics": {"rougeL": {"tolerance": 3.0}}})
    records = (check(lora, baseline_of(accepted_lora), ACCURACY_GATE)
               + check(gen_now, baseline_of(gen_before), rouge_gate))
    assert [r.verdict for r in records] == [REGRESSED, REGRESSED]
    with pytest.raises(GateFailure) as info:
        raise_on_failure(records)
    message = str(info.value)
    assert "2 of 2 gated metric(s)" in message
    assert "sentiment / lora / accuracy: regressed" in message
    assert "descriptions / full / rougeL: regressed" in message and "betting interval" in message
    worst = int(np.argmax(accepted - dropped))
    assert "largest rougeL drops" in message
    assert f"ex-{worst:04d}: {accepted[worst]:.2f} → {dropped[worst]:.2f}" in message
    assert len(info.value.records) == 2


def test_holm_adjusts_across_the_candidates_metrics():
    n = 200
    rng = np.random.default_rng(12)
    base_correct = (rng.random(n) < 0.8).astype(float)
    now_correct = base_correct.copy()
    now_correct[np.flatnonzero(base_correct == 1)[:12]] = 0.0
    base_em = (rng.random(n) < 0.5).astype(float)
    now_em = base_em.copy()
    now_em[np.flatnonzero(base_em == 1)[:9]] = 0.0

    def result(correct, em):
        r = make_result(correct)
        r.per_example["exact_match"] = em.tolist()
        r.metrics["exact_match"] = float(em.mean())
        r.signatures["exact_match"] = "em-v1"
        return r

    config = GateConfig.from_mapping({"metrics": {"accuracy": {"tolerance": 0.01}, "exact_match": {"tolerance": 0.01}}})
    records = check(result(now_correct, now_em), baseline_of(result(base_correct, base_em)), config)
    raw = sorted((r.details["p_drop"], r.details["p_drop_adjusted"]) for r in records)
    assert raw[0][1] == pytest.approx(min(1.0, 2 * raw[0][0]))
    assert raw[1][1] == pytest.approx(max(raw[0][1], raw[1][0]))


def test_gating_a_metric_the_result_lacks_is_a_spec_error():
    result = make_result(correctness(30, 0.8, 13))
    config = GateConfig.from_mapping({"metrics": {"rougeL": {"tolerance": 1}}})
    records = check(result, baseline_of(result), config)
    assert records[0].verdict == NOT_COMPARABLE and records[0].details["config_error"]
    with pytest.raises(SpecError, match=r"sentiment/lora: .*'rougeL'"):
        raise_on_failure(records)


def test_failure_frames_are_hidden_from_pytest_tracebacks():
    assert "__tracebackhide__" in raise_on_failure.__code__.co_varnames


@settings(max_examples=300)
@given(difference=st.floats(-1, 1), allowed=st.floats(0, 0.5), p_ni=st.floats(0, 1) | st.just(math.nan),
       p_inf=st.floats(0, 1), p_sup=st.floats(0, 1), alpha=st.floats(0.001, 0.2))
def test_decide_properties(difference, allowed, p_ni, p_inf, p_sup, alpha):
    verdict = decide(difference=difference, allowed_drop=allowed, p_noninferior=p_ni, p_inferior=p_inf,
                     p_superior=p_sup, alpha=alpha)
    defined = not math.isnan(p_ni)
    assert (verdict == REGRESSED) == (defined and p_inf < alpha)
    assert (verdict in (PASS, IMPROVED)) == (defined and p_inf >= alpha and p_ni < alpha)
    if verdict == IMPROVED:
        assert difference > allowed and p_sup < alpha
    assert (verdict == INCONCLUSIVE) == (not defined or (p_inf >= alpha and p_ni >= alpha))


# -- calibration ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["binary", "continuous"])
def test_aa_false_regression_rate_is_at_most_alpha(kind):
    """No true difference: baseline and current are draws from the same per-example distribution."""
    runs, n, alpha = 1000, 30, 0.05
    rng = np.random.default_rng(0)
    config = GateConfig.from_mapping({"alpha": alpha, "resamples": 0,
                                      "metrics": {("accuracy" if kind == "binary" else "rougeL"): {"tolerance": 0.0}}})
    difficulty = rng.uniform(0.2, 0.95, n)
    regressions = 0
    for _ in range(runs):
        if kind == "binary":
            before = make_result((rng.random(n) < difficulty).astype(float).tolist())
            after = make_result((rng.random(n) < difficulty).astype(float).tolist())
        else:
            before = make_result(rouge=difficulty * 100 + rng.normal(0, 10, n))
            after = make_result(rouge=difficulty * 100 + rng.normal(0, 10, n))
        regressions += check(after, baseline_of(before), config)[0].verdict == REGRESSED
    rate = regressions / runs
    assert rate <= alpha + 2 * math.sqrt(alpha * (1 - alpha) / runs)
    assert rate > 0  # the test does reject sometimes: the simulation exercised the gate


# -- a baseline value edited by hand --------------------------------------------------------------
def _with_value(baseline: Baseline, suite: str, candidate: str, metric: str, value: float) -> Baseline:
    from dataclasses import replace

    entry = baseline.entries[(suite, candidate)]
    metrics = {**entry.metrics, metric: replace(entry.metrics[metric], value=value)}
    return Baseline(entries={**baseline.entries, (suite, candidate): replace(entry, metrics=metrics)})


def test_a_hand_raised_baseline_value_is_a_floor_that_fails_naming_both_values():
    current = make_result(correctness(200, 0.7, seed=3))
    baseline = _with_value(baseline_of(current), "sentiment", "lora", "accuracy", 0.95)
    [record] = check(current, baseline, ACCURACY_GATE)
    assert record.verdict == REGRESSED and record.details["demanded"]
    assert record.baseline == 0.95 and record.current == current.metrics["accuracy"]
    with pytest.raises(GateFailure) as failure:
        raise_on_failure([record])
    text = str(failure.value)
    assert "accuracy" in text and "0.950" in text and f"{current.metrics['accuracy']:.3f}" in text


def test_a_hand_set_floor_within_tolerance_passes():
    current = make_result(correctness(200, 0.7, seed=3))
    floor = current.metrics["accuracy"] + 0.02  # inside the 0.03 tolerance
    [record] = check(current, _with_value(baseline_of(current), "sentiment", "lora", "accuracy", floor),
                     ACCURACY_GATE)
    assert record.verdict == PASS and record.details["demanded"]


def test_an_untouched_baseline_is_compared_pairwise_not_as_a_floor():
    current = make_result(correctness(200, 0.7, seed=3))
    [record] = check(current, baseline_of(current), ACCURACY_GATE)
    assert "demanded" not in record.details and record.details["n_paired"] == 200

"""The planner and the MDE agree with the test: an inconclusive verdict says how many examples would make
it decisive, and at that many an unchanged candidate does pass; ``ft-harness plan`` prints the same
number from the last run's rates or from rates given on the command line; an unchanged slice does not
print the tolerance as its MDE."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from harness.cli import main
from harness.gate import INCONCLUSIVE, PASS, GateConfig, check
from harness.report import write_reports
from harness.results import RunState
from harness.stats import margin_test
from tests.test_gate import baseline_of, make_result

CONFIG = GateConfig.from_mapping({"metrics": {"accuracy": {"tolerance": 0.03}}})


def _needed_from(message: str) -> int:
    found = re.search(r"about ([\d,]+) paired examples would make it decisive", message)
    assert found, message
    return int(found.group(1).replace(",", ""))


def test_an_unchanged_candidate_passes_at_the_size_the_inconclusive_line_names():
    scores = [1.0, 0.0, 1.0, 1.0] * 10  # 40 examples, nothing changed: the drop is bounded, not known
    [record] = check(make_result(scores), baseline_of(make_result(scores)), CONFIG)
    assert record.verdict == INCONCLUSIVE
    needed = _needed_from(record.message)
    assert needed > 40
    # with no discordance the outcome is certain: pass at `needed`, not one example earlier
    for n, verdict in ((needed, PASS), (needed - 1, INCONCLUSIVE)):
        same = ([1.0, 0.0] * n)[:n]
        [record] = check(make_result(same), baseline_of(make_result(same)), CONFIG)
        assert record.verdict == verdict, (n, record.message)


def test_the_named_size_gives_the_promised_power_for_continuous_scores():
    rng = np.random.default_rng(8)
    base = rng.uniform(10, 60, 30)
    current = base + rng.normal(0, 15, 30)
    config = GateConfig.from_mapping({"metrics": {"rougeL": {"tolerance": 3.0}}})
    [record] = check(make_result(rouge=current), baseline_of(make_result(rouge=base)), config)
    assert record.verdict == INCONCLUSIVE
    needed = _needed_from(record.message)
    sd = record.details["spread"]
    runs = 400
    passes = sum(margin_test(np.zeros(needed), rng.normal(0, sd, needed), margin=3.0).lower > -3.0
                 for _ in range(runs))
    assert passes / runs >= 0.8 - 2 * math.sqrt(0.16 / runs)


def test_an_unchanged_small_slice_does_not_print_the_tolerance_as_its_mde():
    ids = [f"ex-{i:04d}" for i in range(60)]
    before = make_result([1.0, 0.0, 1.0] * 20, ids=ids)
    after = make_result([1.0, 0.0, 1.0] * 20, ids=ids)
    changed = list(before.per_example["correct"])
    changed[10:13] = [0.0, 0.0, 0.0] if changed[10] else [1.0, 1.0, 1.0]
    slices = {"part": {"small": ids[:7], "rest": ids[7:]}}
    for result in (before, after):
        result.slices = slices
    [record] = check(after, baseline_of(before), CONFIG)
    small = next(s for s in record.details["slices"] if s["slice"] == "small")
    assert small["mde"] > small["allowed_drop"] + 0.1, small
    assert "paired examples would make it decisive" in small["reason"]


@pytest.fixture
def run_dir(tmp_path):
    scores = [1.0, 0.0, 1.0, 1.0] * 10
    state = RunState(results=[make_result(scores)])
    state.gates += check(make_result(scores), baseline_of(make_result(scores)), CONFIG)
    write_reports(state, tmp_path)
    return tmp_path, state.gates[0]


def test_plan_prints_the_gate_records_number(run_dir, capsys):
    folder, record = run_dir
    assert main(["plan", "--suite", "sentiment", "--results", str(folder / "results.json")]) == 0
    out = capsys.readouterr().out
    assert _needed(out, "lora") == f"{int(record.details['n_needed']):,}" and "discordance 0" in out
    assert main(["plan", "--suite", "sentiment", "--results", str(folder / "results.json"),
                 "--tolerance", "0.06"]) == 0
    wider = capsys.readouterr().out
    assert _needed(wider, "lora") != f"{int(record.details['n_needed']):,}"


def _needed(out: str, candidate: str) -> str:
    """The "examples needed" cell (the last column) of the candidate's row in the plan table."""
    [row] = [line for line in out.splitlines() if line.startswith(f"| {candidate} ")]
    return row.strip().strip("|").split("|")[-1].strip()


def test_plan_from_rates_on_the_command_line_matches_a_simulation(capsys):
    assert main(["plan", "--suite", "s", "--discordance", "0.1", "--tolerance", "0.03"]) == 0
    needed = int(re.search(r"s: ([\d,]+) paired", capsys.readouterr().out).group(1).replace(",", ""))
    rng = np.random.default_rng(9)
    runs, passes = 400, 0
    for _ in range(runs):
        u = rng.random(needed)
        base = (rng.random(needed) < 0.7).astype(float)
        current = np.where(u < 0.1, 1.0 - base, base)
        swap = (u < 0.1) & (rng.random(needed) < 0.5)  # half the changed examples fixed, half broken
        base, current = np.where(swap, current, base), np.where(swap, base, current)
        passes += margin_test(base, current, margin=0.03).lower > -0.03
    assert passes / runs >= 0.8 - 2 * math.sqrt(0.16 / runs)


@pytest.mark.parametrize(("argv", "code", "needle"), [
    (["--suite", "s", "--sd", "2"], 2, "--tolerance is required"),
    (["--suite", "s", "--discordance", "1.5", "--tolerance", "0.1"], 2, "--discordance must be at most 1"),
    (["--suite", "nope", "--results", "{missing}"], 3, "no results file"),
])
def test_plan_usage_errors(argv, code, needle, tmp_path, capsys):
    argv = [a.replace("{missing}", str(tmp_path / "none.json")) for a in argv]
    assert main(["plan", *argv]) == code
    assert needle in capsys.readouterr().err


def test_plan_names_the_suites_it_has(run_dir, capsys):
    folder, _ = run_dir
    assert main(["plan", "--suite", "other", "--results", str(folder / "results.json")]) == 2
    assert "suites gated there: sentiment" in capsys.readouterr().err


def test_plan_for_a_bounded_score_reads_the_betting_bound_the_gate_uses(tmp_path, capsys):
    rng = np.random.default_rng(3)
    config = GateConfig.from_mapping({"metrics": {"rougeL": {"tolerance": 3.0}}})
    base = rng.uniform(20, 60, 120)
    current = np.clip(base + rng.normal(0, 4, 120), 0, 100)
    [record] = check(make_result(rouge=current), baseline_of(make_result(rouge=base)), config)
    assert record.verdict == INCONCLUSIVE and record.details["method"].startswith("betting"), record.message
    needed = _needed_from(record.message)
    state = RunState(results=[make_result(rouge=current)])
    state.gates.append(record)
    write_reports(state, tmp_path)
    assert main(["plan", "--suite", "sentiment", "--results", str(tmp_path / "results.json")]) == 0
    out = capsys.readouterr().out
    assert _needed(out, "lora") == f"{needed:,}" and "range 100" in out
    # the paired t formula at this SD asks for far fewer examples than the bound the gate reads needs
    assert main(["plan", "--suite", "s", "--sd", f"{record.details['spread']:.6f}", "--tolerance", "3"]) == 0
    t_needed = int(re.search(r"([\d,]+) paired examples", capsys.readouterr().out).group(1).replace(",", ""))
    assert t_needed < needed / 2


def test_an_unchanged_bounded_score_passes_at_the_size_the_plan_names_and_not_far_below(capsys):
    assert main(["plan", "--suite", "s", "--sd", "0", "--range", "100", "--tolerance", "3"]) == 0
    needed = int(re.search(r"([\d,]+) paired examples", capsys.readouterr().out).group(1).replace(",", ""))
    assert needed > 200  # the betting bound of n unchanged ROUGE scores is about 800 / n points wide
    config = GateConfig.from_mapping({"metrics": {"rougeL": {"tolerance": 3.0}}})
    rng = np.random.default_rng(4)
    for n, verdict in ((needed, PASS), (needed // 2, INCONCLUSIVE)):
        same = rng.uniform(20, 60, n)
        [record] = check(make_result(rouge=same), baseline_of(make_result(rouge=same)), config)
        assert record.verdict == verdict, (n, record.message)


@pytest.mark.parametrize(("sd", "margin"), [(5.0, 1e-4), (1.0, 1e-5), (0.3, 0.05), (2.0, 0.01)])
def test_the_named_size_for_a_mean_is_the_smallest_with_the_margin_as_mde_and_found_in_few_steps(
        sd, margin, monkeypatch):
    from harness.stats import planning, power

    calls = []
    monkeypatch.setattr(planning, "mde", lambda *a, **k: calls.append(a) or power.mde(*a, **k))
    needed = int(planning.examples_for_mean(sd, margin))
    # smallest n whose one-sided MDE is within the margin (a 10^10-pair answer once took millions of steps)
    assert power.mde(needed, sd, alternative="greater") <= margin < power.mde(needed - 1, sd, alternative="greater")
    assert len(calls) < 80
    assert planning.examples_for_mean(1.0, 1e-300) == math.inf  # overflows to "no realistic set", no warning

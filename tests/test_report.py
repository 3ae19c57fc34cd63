"""Reports: valid markdown tables, embedded plots, determinism, results.json, CI summary, JUnit."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_gate import baseline_of, correctness, make_result

from harness.cost import PricingTable
from harness.errors import HarnessError
from harness.gate import GateConfig, check
from harness.report import junit_properties, read_results, write_reports
from harness.report.intervals import metric_intervals
from harness.report.markdown import RUN_INFO_HEADING, strip_run_info
from harness.report.tables import markdown_table
from harness.results import ComparisonRecord, Problem, RunState
from harness.stats import compare

HISTORY = [{"step": s, "epoch": s / 10, "loss": 2.0 / s} for s in range(1, 11)] + [
    {"step": 10, "epoch": 1.0, "eval_loss": 0.9}]
TRAINING = {"hyperparameters": {"learning_rate": 0.003, "r": 16, "api_key": "sk-abcdefghijklmnopqrstuvwx"},
            "runtime_s": 4.25, "trainable_params": 12_288, "total_params": 131_072, "train_loss": 0.6,
            "eval_loss": 0.9, "log_history": HISTORY, "rows_dropped": 3, "rows_truncated": 2,
            "notes": ["dropped rows | all labels masked"]}
USAGE = {"requests": 80.0, "prompt_tokens": 4000.0, "completion_tokens": 640.0}


def build_state() -> RunState:
    lora = make_result(correctness(80, 0.85, 1), training=TRAINING, usage=USAGE, details={"model": "gpt-4o-mini"})
    base = make_result(correctness(80, 0.55, 2), candidate="base")
    lora.predictions[3] = "positive | negative\nmaybe"  # must not break a table row
    accepted_lora = make_result([1.0] * 80)
    generation = make_result(rouge=np.random.default_rng(3).uniform(20, 80, 40), suite="descriptions",
                             candidate="full")
    state = RunState(results=[lora, base, generation])
    # 80 unchanged examples bound a drop at 0.033 (Tango): a 0.05 tolerance lets the unchanged base pass
    config = GateConfig.from_mapping({"metrics": {"accuracy": {"tolerance": 0.05}}})
    state.gates += check(lora, baseline_of(accepted_lora), config) + check(base, baseline_of(base), config)
    result = compare(base.per_example["correct"], lora.per_example["correct"], kind="binary")
    state.comparisons.append(ComparisonRecord("sentiment", "accuracy", "base", "lora", result.as_dict()))
    state.problems += [
        Problem("suites/test_sentiment.py::test_no_regression_against_baseline[lora]", "regression", "gate failed"),
        Problem("suites/test_descriptions.py::test_loads", "harness error", "data.jsonl:3: field 'messages'"),
    ]
    state.run_info = {"duration_s": 12.5, "cache": {"hits": 3, "misses": 1}}
    return state


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    state = build_state()
    return out, state, write_reports(state, out)


def tables(text: str) -> list[list[str]]:
    """Consecutive lines starting with '|' grouped into tables."""
    found, current = [], []
    for line in text.splitlines():
        if line.startswith("|"):
            current.append(line)
        elif current:
            found.append(current)
            current = []
    return found + ([current] if current else [])


def columns(row: str) -> int:
    return len(re.split(r"(?<!\\)\|", row.strip())) - 2


def test_files_written(written):
    out, _, paths = written
    names = sorted(p.name for p in paths)
    assert names == ["descriptions-metrics.png", "descriptions.md", "index.html", "index.md", "pr-comment.md",
                     "results.json",
                     "sentiment-loss.png", "sentiment-metrics.png", "sentiment.md"]
    assert all((out / name).is_file() for name in names)


def test_markdown_tables_are_valid(written):
    out, _, _ = written
    for page in out.glob("*.md"):
        if page.name == "pr-comment.md":  # a list, no tables
            continue
        found = tables(page.read_text())
        assert found, page
        for table in found:
            width = columns(table[0])
            assert re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", table[1]), table[1]
            assert all(columns(row) == width for row in table), (page.name, table)


def test_images_are_embedded_by_relative_path(written):
    out, _, _ = written
    text = (out / "sentiment.md").read_text()
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert images == ["sentiment-metrics.png", "sentiment-loss.png"]
    for image in images:
        assert not Path(image).is_absolute()
        assert (out / image).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_second_write_is_byte_identical_but_run_info(written, tmp_path):
    out, _, _ = written
    state = build_state()
    state.run_info = {"duration_s": 99.0, "cache": {"hits": 0, "misses": 4}}
    write_reports(state, tmp_path)
    for first in out.iterdir():
        second = tmp_path / first.name
        if first.name == "pr-comment.md":
            assert first.read_text() == second.read_text()
        elif first.suffix == ".md":
            a, b = first.read_text(), second.read_text()
            assert RUN_INFO_HEADING in a and a.rstrip().endswith(a[a.index(RUN_INFO_HEADING):].rstrip())
            assert strip_run_info(a) == strip_run_info(b)
            assert a != b  # the run info does differ
        elif first.suffix == ".png":
            assert first.read_bytes() == second.read_bytes()
        elif first.suffix == ".html":  # the same page but for the date it was written
            written_at = re.compile(r'<span id="written">[^<]*</span>')
            assert written_at.sub("", first.read_text()) == written_at.sub("", second.read_text())
        else:
            a, b = json.loads(first.read_text()), json.loads(second.read_text())
            a["state"].pop("run_info"), b["state"].pop("run_info")
            assert a == b


def test_suite_page_content(written):
    out, state, _ = written
    text = (out / "sentiment.md").read_text()
    lines = text.splitlines()
    assert lines[0] == "# Suite `sentiment`"
    assert lines[2].startswith("**FAIL**: lora accuracy regressed (1.000 → 0.") and "harness error" not in lines[2]
    lora = state.result("sentiment", "lora")
    interval = metric_intervals(lora)["accuracy"]
    assert (f"| {lora.metrics['accuracy']:.3f} [{interval.low:.3f}, {interval.high:.3f}] |" in text)
    assert "| lora        | lora   | mmmmmmmmmmmm | 80  |" in text
    gate = next(g for g in state.gates if g.candidate == "lora")
    first_flip = gate.details["worse"][0]
    assert f"| {first_flip['id']}" in text and f"| {first_flip['expected']}" in text
    assert "positive \\| negative maybe" in text
    assert "api_key=***" in text and "sk-abc" not in text
    assert "| 12,288 / 131,072" in text and "| 3 / 2 " in text and "dropped rows \\| all labels masked" in text
    assert "| 0.2 " in text and "| 0.9 " in text  # final logged train loss, validation loss
    assert f"| {lora.split_fingerprint} |" in text
    assert "| regression | suites/test_sentiment.py::test_no_regression_against_baseline[lora]" in text
    assert "test_descriptions" not in text


def test_cost_per_thousand_requests(written):
    out, _, _ = written
    price = PricingTable().inference_price("gpt-4o-mini")
    per_1k = (4000 * price.input_per_1m + 640 * price.output_per_1m) / 1e6 / 80 * 1000
    text = (out / "sentiment.md").read_text()
    assert f"| gpt-4o-mini | 80         | 50000                    | 8000                         | ${per_1k:.4f}" in text


def test_comparison_table(written):
    out, state, _ = written
    result = state.comparisons[0].result
    text = (out / "sentiment.md").read_text()
    assert re.search(rf"\|\s+{re.escape(format(result['relative_improvement'] * 100, '+.1f'))}%\s+\|", text)
    assert result["method"] in text and f"{result['mde']:.3f}" in text


def test_index_links_every_suite_with_its_verdict(written):
    out, _, _ = written
    text = (out / "index.md").read_text()
    assert text.splitlines()[2] == "**FAIL**: 2 suite(s) failed (descriptions, sentiment)"
    assert "| [descriptions](descriptions.md) | FAIL" in text  # its harness error fails the suite
    assert "| [sentiment](sentiment.md)       | FAIL" in text
    assert "| harness error | suites/test_descriptions.py::test_loads" in text


def test_results_json_round_trip(written):
    out, state, _ = written
    document = json.loads((out / "results.json").read_text())
    assert document["schema_version"] == 1
    again = read_results(out / "results.json")
    assert json.loads(json.dumps(again.as_dict())) == document["state"]
    assert [r.candidate for r in again.results] == [r.candidate for r in state.results]
    assert again.gates[0].details["worse"] == state.gates[0].details["worse"]


def test_read_results_errors(tmp_path):
    bad = tmp_path / "results.json"
    bad.write_text('{"schema_version": 1,\n "state": [}')
    with pytest.raises(HarnessError, match=f"{bad}:2:"):
        read_results(bad)
    bad.write_text('{\n  "schema_version": 1,\n  "state": 3\n}\n')
    with pytest.raises(HarnessError, match=f"{bad}:3: field 'state'"):
        read_results(bad)


def test_intervals_equal_scipy_bootstrap():
    from scipy import stats

    result = make_result(rouge=np.random.default_rng(4).uniform(20, 80, 60))
    scores = np.asarray(result.per_example["rougeL"])
    expected = stats.bootstrap((scores,), np.mean, n_resamples=2000, method="percentile",
                               rng=np.random.default_rng(0)).confidence_interval
    interval = metric_intervals(result)["rougeL"]
    assert (interval.low, interval.high) == pytest.approx((expected.low, expected.high))
    assert interval.of_aggregate
    # 0/1 scores are resampled as counts (the same bootstrap, other draws): equal within resampling error
    binary = make_result(correctness(60, 0.7, 4))
    expected = stats.bootstrap((np.asarray(binary.per_example["correct"]),), np.mean, n_resamples=2000,
                               method="percentile", rng=np.random.default_rng(0)).confidence_interval
    interval = metric_intervals(binary)["accuracy"]
    assert (interval.low, interval.high) == pytest.approx((expected.low, expected.high), abs=2 / 60)


def test_step_summary_appended(tmp_path, monkeypatch):
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    state = build_state()
    paths = write_reports(state, tmp_path / "out")
    assert summary in paths
    first = summary.read_text()
    assert first.startswith("## ft-harness: **FAIL**")
    assert "### `sentiment`: **FAIL**" in first and "| candidate" in first
    write_reports(state, tmp_path / "out")
    assert summary.read_text() == first + first


def test_no_step_summary_without_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    paths = write_reports(build_state(), tmp_path)
    assert all(p.parent == tmp_path for p in paths)


def test_junit_properties():
    state = build_state()
    properties = dict(junit_properties(state))
    lora = state.result("sentiment", "lora")
    assert properties["ft.verdict"] == "FAIL"
    assert properties["ft.sentiment.verdict"] == "FAIL"
    assert properties["ft.sentiment.lora.accuracy.gate"] == "regressed"
    assert properties["ft.sentiment.base.accuracy.gate"] == "pass"
    assert float(properties["ft.sentiment.lora.accuracy"]) == lora.metrics["accuracy"]
    assert properties["ft.sentiment.lora.model"] == lora.fingerprint
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in junit_properties(state))


def test_passing_run_says_pass(tmp_path):
    result = make_result(correctness(200, 0.8, 5))  # 200 unchanged examples bound a drop at 0.013
    state = RunState(results=[result])
    state.gates += check(result, baseline_of(result), GateConfig.from_mapping({}))
    write_reports(state, tmp_path)
    assert (tmp_path / "sentiment.md").read_text().splitlines()[2] == "**PASS**: 1 gated metric(s): 1 pass"
    assert (tmp_path / "index.md").read_text().splitlines()[2] == "**PASS**: 1 suite(s)"


def test_no_baseline_note_is_shown(tmp_path):
    from harness.gate import Baseline

    result = make_result(correctness(20, 0.8, 6))
    state = RunState(results=[result])
    state.gates += check(result, Baseline(path="reports/baseline.json", exists=False), GateConfig.from_mapping({}))
    write_reports(state, tmp_path, baseline_note="baseline reports/baseline.json updated: 1 added")
    text = (tmp_path / "index.md").read_text()
    assert "baseline reports/baseline.json updated: 1 added" in text
    assert "no baseline yet (reports/baseline.json does not exist)" in text


@given(st.lists(st.lists(st.text(max_size=12), min_size=3, max_size=3), max_size=5))
def test_markdown_table_keeps_columns_for_any_text(rows):
    table = markdown_table(["a", "b", "c"], rows).splitlines()
    assert len(table) == len(rows) + 2
    assert all(columns(line) == 3 for line in table)


def test_break_even_of_a_billed_fine_tune_against_prompting():
    from harness.cost import PricingTable
    from harness.report.costs import cost_section

    table = PricingTable()
    base_price = table.inference_price("gpt-4o-mini")
    tuned_price = table.inference_price("ft:gpt-4o-mini:org::abc")
    n = 10
    prompted = make_result([1] * n, candidate="fewshot", details={"model": "gpt-4o-mini"},
                           usage={"requests": n, "prompt_tokens": 1500.0 * n, "completion_tokens": 2.0 * n})
    tuned = make_result([1] * n, candidate="ft", details={"model": "ft:gpt-4o-mini:org::abc"},
                        training={"cost_usd": 0.9, "log_history": []},
                        usage={"requests": n, "prompt_tokens": 60.0 * n, "completion_tokens": 2.0 * n})
    # independent arithmetic: dollars per request from per-1M-token prices
    p = (1500 * base_price.input_per_1m + 2 * base_price.output_per_1m) / 1e6
    f = (60 * tuned_price.input_per_1m + 2 * tuned_price.output_per_1m) / 1e6
    expected = math.ceil(0.9 / (p - f))
    text = cost_section([prompted, tuned], table)
    assert "Prompting vs fine-tuning" in text
    assert f"{expected:,}" in text
    row = next(line for line in text.split("### Prompting")[1].splitlines() if line.startswith("| ft "))
    assert "fewshot" in row and "$0.9000" in row


def test_no_break_even_table_without_a_billed_training_cost():
    from harness.report.costs import cost_section

    prompted = make_result([1, 0], candidate="a", details={"model": "gpt-4o-mini"},
                           usage={"requests": 2, "prompt_tokens": 20.0, "completion_tokens": 2.0})
    assert "Prompting vs fine-tuning" not in cost_section([prompted])


def test_fails_the_run_legend_only_where_a_row_fails():
    from harness.report.sections import gate_section

    result = make_result(correctness(200, 0.8, 5))
    config = GateConfig.from_mapping({"metrics": {"accuracy": {"tolerance": 0.03}}})
    passing = check(result, baseline_of(result), config)
    assert "✗" not in gate_section(passing)
    failing = check(result, baseline_of(make_result([1.0] * 200)), config)
    section = gate_section(failing)
    assert "regressed ✗" in section and "✗ fails the run." in section
    assert "90% CI (1 − 2α)" in section


def test_the_comparisons_legend_speaks_of_bleu_only_where_bleu_is_compared():
    from harness.report.sections import comparisons_section

    result = {"mean_a": 0.5, "mean_b": 0.7, "difference": 0.2, "p_value": 0.01, "method": "McNemar"}
    accuracy_only = comparisons_section([ComparisonRecord("s", "accuracy", "base", "lora", result)])
    assert "80% power" in accuracy_only and "BLEU" not in accuracy_only
    with_bleu = comparisons_section([ComparisonRecord("s", "bleu", "base", "lora", result)])
    assert "corpus BLEU" in with_bleu

"""The report's slice table, forest plot, verdict-line flag and results.json round trip."""

from __future__ import annotations

from test_slices_gate import baseline_of, hidden_regression_pair

from harness.gate import GateConfig, check
from harness.report import read_results, write_reports
from harness.results import RunState
from harness.session import compare_results


def test_report_shows_slices_forest_plot_and_the_hidden_regression(tmp_path):
    base, current = hidden_regression_pair()
    config = GateConfig.from_mapping({"metrics": {"accuracy": {"tolerance": 0.03}}})
    state = RunState(results=[current], gates=check(current, baseline_of(base), config))
    base_candidate = compare_results(base, current, "accuracy", config=config)[1]
    base_candidate.a = "base"
    state.comparisons.append(base_candidate)
    written = write_reports(state, tmp_path)
    page = (tmp_path / "sentiment.md").read_text(encoding="utf-8")
    verdict_line = page.splitlines()[2]
    assert "hidden regression" in verdict_line and "label: negative" in verdict_line
    assert "## Slices" in page and "### lora" in page
    table = page.split("## Slices")[1]
    negative = next(line for line in table.splitlines() if line.startswith("| label: negative"))
    assert "regressed" in negative and "[" in negative
    png = tmp_path / "sentiment-lora-slices.png"
    assert png in written and png.read_bytes().startswith(b"\x89PNG")
    assert "sentiment-lora-slices.png" in page
    again = read_results(tmp_path / "results.json")
    assert again.results[0].slices == current.slices
    assert [s["label"] for s in again.comparisons[0].result["slices"]] == ["label: positive", "label: negative"]


def test_rescoring_the_recorded_state_gives_the_same_slice_verdicts(tmp_path):
    base, current = hidden_regression_pair()
    config = GateConfig.from_mapping({"metrics": {"accuracy": {"tolerance": 0.03}}})
    state = RunState(results=[current], gates=check(current, baseline_of(base), config))
    write_reports(state, tmp_path)
    reread = read_results(tmp_path / "results.json").results[0]
    [again] = check(reread, baseline_of(base), config)
    def by_label(rows):
        return {row["label"]: row for row in rows}

    assert by_label(again.details["slices"]) == by_label(state.gates[0].details["slices"])


def test_a_baseline_value_raised_by_hand_on_a_sliced_suite_writes_the_report(tmp_path):
    """A demanded floor has no overall interval: the slice note uses the slice tests' own level."""
    base, current = hidden_regression_pair()
    config = GateConfig.from_mapping({"metrics": {"accuracy": {"tolerance": 0.03}}})
    import dataclasses

    baseline = baseline_of(base)
    entry = next(iter(baseline.entries.values()))
    entry.metrics["accuracy"] = dataclasses.replace(entry.metrics["accuracy"], value=1.0)  # raised by hand
    state = RunState(results=[current], gates=check(current, baseline, config))
    [record] = state.gates
    assert record.verdict == "regressed" and record.details.get("demanded") and record.details.get("slices")
    write_reports(state, tmp_path)
    page = (tmp_path / "sentiment.md").read_text(encoding="utf-8")
    assert "## Slices" in page and "(90% interval)" in page

"""reports/history.jsonl: appended on every baseline update; trend plot; max_drift fails a slow drift."""

from __future__ import annotations

import json

import pytest
from test_gate import make_result

from harness.errors import HarnessError, SpecError
from harness.gate import GateConfig, check, failing_records, load_baseline, update_baseline
from harness.gate.history import HISTORY_FILE, KEEP, append_history, read_history
from harness.report import write_reports
from harness.results import RunState

N = 200


def at(step: int):
    """Accuracy 0.80 at step 0, one point lower at every step: the same 2 examples more break each time."""
    return make_result([1.0 if i < 160 - 2 * step else 0.0 for i in range(N)])


def config(**extra):
    return GateConfig.from_mapping({"metrics": {"accuracy": {"tolerance": 0.02, **extra}}})


def accept(path, step: int, gate: GateConfig):
    """Gate the step's run against the stored baseline and its history, then accept it."""
    result = at(step)
    history = read_history(path.parent / HISTORY_FILE)
    records = check(result, load_baseline(path), gate, history=history)
    update_baseline(path, RunState(results=[result], gates=records))
    return records


def test_a_slow_drift_passes_every_step_but_fails_max_drift_against_the_oldest_entry(tmp_path):
    path = tmp_path / "baseline.json"
    for step in range(5):  # 0.80, 0.79, ..., 0.76: each step within the 0.02 tolerance
        records = accept(path, step, config())
        assert failing_records(records) == [], step
    history = read_history(tmp_path / HISTORY_FILE)
    assert [e["values"]["sentiment"]["lora"]["accuracy"] for e in history] == [0.80, 0.79, 0.78, 0.77, 0.76]
    # the fifth step down: 0.75 passes against the last baseline (0.76) ...
    (plain,) = check(at(5), load_baseline(path), config(), history=history)
    assert failing_records([plain]) == []
    assert [p["value"] for p in plain.details["history"]] == [0.80, 0.79, 0.78, 0.77, 0.76]
    # ... and fails max_drift: five points below the oldest kept entry
    (drifted,) = check(at(5), load_baseline(path), config(max_drift=0.03), history=history)
    assert failing_records([drifted]) == [drifted]
    assert drifted.details["drift"]["oldest"] == 0.80
    assert drifted.details["drift"]["change"] == pytest.approx(-0.05)
    (within,) = check(at(5), load_baseline(path), config(max_drift=0.06), history=history)
    assert failing_records([within]) == []


def test_the_report_draws_the_trend_and_names_the_drift(tmp_path):
    path = tmp_path / "baseline.json"
    for step in range(4):
        accept(path, step, config())
    records = check(at(5), load_baseline(path), GateConfig.from_mapping({"max_drift": "4%", "metrics": ["accuracy"]}),
                    history=read_history(tmp_path / HISTORY_FILE))
    assert records[0].details["drift"]["max_drift"] == pytest.approx(0.032)  # 4 % of the oldest 0.80
    out = tmp_path / "reports"
    write_reports(RunState(results=[at(5)], gates=records), out)
    assert (out / "sentiment-trend.png").stat().st_size > 1000
    page = (out / "sentiment.md").read_text()
    assert "(sentiment-trend.png)" in page and "drift -0.050 since" in page
    assert "FAIL" in page.splitlines()[2]


def test_history_keeps_the_newest_entries_and_bad_lines_are_named(tmp_path):
    path = tmp_path / HISTORY_FILE
    records = check(at(0), load_baseline(tmp_path / "none.json"), config())
    for i in range(KEEP + 3):
        append_history(path, records, f"2026-01-{i:02d}")
    entries = read_history(path)
    assert len(entries) == KEEP and entries[0]["date"] == "2026-01-03"
    path.write_text(path.read_text() + '{"date": 3}\n')
    with pytest.raises(HarnessError, match=rf"{HISTORY_FILE}:{KEEP + 1}: field 'date'"):
        read_history(path)
    path.write_text("not json\n")
    with pytest.raises(HarnessError, match=rf"{HISTORY_FILE}:1: not valid JSON"):
        read_history(path)


def test_an_update_that_changes_nothing_adds_no_line(tmp_path):
    path = tmp_path / "baseline.json"
    accept(path, 0, config())
    accept(path, 0, config())
    assert len((tmp_path / HISTORY_FILE).read_text().splitlines()) == 1
    assert json.loads((tmp_path / HISTORY_FILE).read_text())["values"] == {"sentiment": {"lora": {"accuracy": 0.8}}}


@pytest.mark.parametrize("table, key", [({"max_drift": "lots"}, "gate.max_drift"),
                                        ({"metrics": {"accuracy": {"max_drift": -1}}}, "gate.metrics.accuracy.max_drift")])
def test_bad_max_drift_names_the_key(table, key):
    with pytest.raises(SpecError, match=key.replace(".", r"\.")):
        GateConfig.from_mapping(table)

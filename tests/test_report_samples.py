"""The report shows sample outputs under every verdict, and the degenerate-generation flag on the
verdict line; the decision refuses a degenerate fine-tune."""

from __future__ import annotations

import dataclasses

from test_gate import make_result

from harness.metrics.degenerate_text import generation_checks
from harness.report import write_reports
from harness.report.samples import sample_ids
from harness.results import RunState


def _pair() -> tuple:
    base = make_result(rouge=[10.0] * 40, candidate="base")
    base = dataclasses.replace(base, kind="base", predictions=[f"a lamp {i}" for i in range(40)])
    tuned = make_result(rouge=[30.0] * 40, candidate="full", training={"runtime_s": 1.0})
    tuned = dataclasses.replace(tuned, kind="full", predictions=["the same sentence"] * 40)
    tuned.details["degenerate"] = generation_checks(tuned.predictions, tuned.references, tuned.inputs)
    return base, tuned


def test_a_passing_report_shows_the_same_seeded_samples_for_every_candidate(tmp_path):
    base, tuned = _pair()
    ids = sample_ids([tuned, base])
    assert ids == sample_ids([base, tuned]) and len(ids) == 3 and ids != ["ex-0000", "ex-0001", "ex-0002"]
    write_reports(RunState(results=[base, tuned]), tmp_path)
    page = (tmp_path / "sentiment.md").read_text(encoding="utf-8")
    section = page.split("## Sample outputs")[1].split("\n## ")[0]
    for example_id in ids:
        i = int(example_id.split("-")[1])
        block = section.split(f"### {example_id}")[1].split("###")[0]
        rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in block.strip().splitlines()[2:]
                if line.startswith("|")]
        assert rows == [["*input*", f"describe product {i}"], ["*reference*", f"reference text {i}"],
                        ["base (base)", f"a lamp {i}"], ["full (full)", "the same sentence"]]


def test_a_degenerate_fine_tune_is_flagged_on_the_verdict_line(tmp_path):
    base, tuned = _pair()
    write_reports(RunState(results=[base, tuned]), tmp_path)
    verdict = (tmp_path / "sentiment.md").read_text(encoding="utf-8").splitlines()[2]
    assert "⚠ full: degenerate generation: 1 distinct outputs for 40 inputs (references: 40)" in verdict

"""The markdown pages: one per suite (``<suite>.md``) and ``index.md`` linking them.

Everything above the final ``## Run info`` section depends only on the recorded results, so
rewriting a report from the same results gives the same bytes up to that heading.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from harness.report import sections
from harness.report.collateral import collateral_section
from harness.report.costs import cost_section, pricing_table
from harness.report.decision import decision_section
from harness.report.intervals import Interval
from harness.report.judges import judges_section
from harness.report.samples import samples_section
from harness.report.slices import slices_section
from harness.report.tables import markdown_table
from harness.report.verdicts import FAIL, run_verdict, suite_gates, suite_problems, suite_verdict
from harness.results import RunState

RUN_INFO_HEADING = "## Run info"


def suite_results(state: RunState, suite: str):
    """The suite's results sorted by candidate name."""
    return sorted((r for r in state.results if r.suite == suite), key=lambda r: r.candidate)


def suite_page(state: RunState, suite: str, *, intervals: Mapping[str, Mapping[str, Interval]],
               images: Sequence[tuple[str, str]], date: str, baseline_note: str | None = None,
               search_images: Mapping[str, str] | None = None, slice_images: Mapping[str, str] | None = None) -> str:
    """The whole ``<suite>.md`` text: verdict line first, run info last."""
    results = suite_results(state, suite)
    gates = suite_gates(state, suite)
    verdict = suite_verdict(state, suite)
    notes = f"\n{baseline_note}\n" if baseline_note else ""
    warnings = "".join(f"\n{line}\n" for line in verdict.warnings)  # training-data loss, under the verdict
    parts = [
        f"# Suite `{suite}`\n\n{verdict.line}\n{warnings}{notes}\n",
        sections.candidates_section(results, intervals),
        sections.comparisons_section([c for c in state.comparisons if c.suite == suite]),
        judges_section(results),
        sections.gate_section(gates),
        sections.regressions_section(gates),
        samples_section(results),
        slices_section(state, suite, slice_images),
        collateral_section(state, suite),
        sections.plots_section(images),
        sections.training_section(results),
        sections.search_section(results, search_images),
        sections.stability_section(results),
        sections.evaluation_notes_section(results),
        sections.datasets_section(results),
        cost_section(results, pricing_table(state.settings)),
        decision_section(state.decisions.get(suite), results),
        sections.problems_section(suite_problems(state, suite)),
        sections.run_info_section(state.run_info, results, date=date),
    ]
    return "".join(parts)


def index_page(state: RunState, pages: Mapping[str, str], *, date: str, baseline_note: str | None = None) -> str:
    """``index.md``: the run's verdict, each suite with its verdict and link, every failure."""
    verdict = run_verdict(state)
    rows = []
    for suite in state.suites():
        v = suite_verdict(state, suite)
        candidates = sorted({r.candidate for r in state.results if r.suite == suite})
        rows.append([f"[{suite}]({pages[suite]})", v.status, ", ".join(candidates) or "none",
                     v.line.split(": ", 1)[-1]])
    body = markdown_table(["suite", "verdict", "candidates", "details"], rows) if rows else "No suite ran."
    notes = f"\n{baseline_note}\n" if baseline_note else ""
    failing = [s for s in state.suites() if suite_verdict(state, s).status == FAIL]
    parts = [f"# ft-harness report\n\n{verdict.line}\n{notes}\n", f"## Suites\n\n{body}\n\n"]
    if failing:
        parts.append("Failing: " + ", ".join(f"[{s}]({pages[s]})" for s in failing) + "\n\n")
    parts.append(sections.problems_section(state.problems))
    parts.append(sections.run_info_section(state.run_info, [], date=date))
    return "".join(parts)


def strip_run_info(text: str) -> str:
    """The page without its run-info section (what must repeat byte for byte)."""
    head, _, _ = text.partition(RUN_INFO_HEADING)
    return head

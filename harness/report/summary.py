"""Short forms of the results for CI: the GitHub step summary and JUnit XML properties."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from harness.report import sections
from harness.report.intervals import Interval
from harness.report.verdicts import run_verdict, suite_gates, suite_verdict
from harness.results import RunState

STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"


def step_summary(state: RunState, intervals: Mapping[tuple[str, str], Mapping[str, Interval]]) -> str:
    """Markdown for the CI job page: the run's verdict, then per suite its verdict and main table."""
    parts = [f"## ft-harness: {run_verdict(state).line}\n\n"]
    for suite in state.suites():
        results = sorted((r for r in state.results if r.suite == suite), key=lambda r: r.candidate)
        per_candidate = {r.candidate: intervals.get((suite, r.candidate), {}) for r in results}
        table = sections.candidates_section(results, per_candidate, level=4)
        parts.append(f"### `{suite}`: {suite_verdict(state, suite).line}\n\n{table}")
    return "".join(parts)


def append_step_summary(state: RunState, intervals: Mapping[tuple[str, str], Mapping[str, Interval]],
                        environ: Mapping[str, str] | None = None) -> Path | None:
    """Append :func:`step_summary` to ``$GITHUB_STEP_SUMMARY`` when it is set; returns the file."""
    target = (environ if environ is not None else os.environ).get(STEP_SUMMARY_ENV)
    if not target:
        return None
    path = Path(target)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(step_summary(state, intervals) + "\n")
    return path


def junit_properties(state: RunState) -> list[tuple[str, str]]:
    """``(name, value)`` pairs for ``record_testsuite_property``: verdicts, metrics, gate outcomes."""
    properties = [("ft.verdict", run_verdict(state).status)]
    for suite in state.suites():
        properties.append((f"ft.{suite}.verdict", suite_verdict(state, suite).status))
        for r in sorted((r for r in state.results if r.suite == suite), key=lambda r: r.candidate):
            properties.append((f"ft.{suite}.{r.candidate}.model", r.fingerprint))
            properties.append((f"ft.{suite}.{r.candidate}.n", str(r.n)))
            for metric, value in sorted(r.metrics.items()):
                properties.append((f"ft.{suite}.{r.candidate}.{metric}", repr(value)))
        for g in suite_gates(state, suite):
            properties.append((f"ft.{suite}.{g.candidate}.{g.metric}.gate", g.verdict))
    return properties

"""``reports/pr-comment.md`` and GitHub workflow annotations: the verdict where reviewers read it.

The comment is compact: the run's verdict, one line per suite (failing suites first), every
failing gate with its flip counts and the first harmful examples, then the other gates, and where
to find the full reports. It stays under GitHub's 65,536-character comment limit: when the lines
do not fit, the last ones are left out and a "… N more" line says how many. Annotations are
``::error title=...::message`` workflow commands, one per failing gate, printed when
``GITHUB_ACTIONS`` is set. Both read the gate records; neither computes anything.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from harness.fmt import fmt_metric
from harness.report.verdicts import FAIL, is_failing, run_verdict, suite_gates, suite_verdict
from harness.results import GateRecord, RunState

#: GitHub refuses a comment body longer than this.
GITHUB_COMMENT_LIMIT = 65_536
#: A hidden marker so a sticky-comment action (or a script) finds and replaces the previous comment.
MARKER = "<!-- ft-harness-pr-comment -->"
SHOWN_HARMFUL = 5
ARTIFACT = "ft-harness-reports"
LINE_LIMIT = 600  # a verdict line naming hundreds of failures is cut; the gate lines below list them


def _flips(g: GateRecord) -> str:
    flips = g.details.get("flips")
    if not flips:
        return ""
    counts = flips.get("counts") or {}
    text = f"{counts.get('harmful', 0)} harmful, {counts.get('beneficial', 0)} beneficial"
    if flips.get("outputs_compared"):
        text += f", {counts.get('churn', 0)} churn"
    return text


def _clip(text: str, limit: int = LINE_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _gate_line(g: GateRecord) -> str:
    change = (f"{fmt_metric(g.baseline, g.metric)} → {fmt_metric(g.current, g.metric)}"
              if g.baseline is not None else fmt_metric(g.current, g.metric))
    delta = g.details.get("delta")
    if delta is not None:
        change += f" (Δ {fmt_metric(delta, g.metric, signed=True)}, tolerance {g.details.get('tolerance', '')})"
    flips = _flips(g)
    line = f"- `{g.suite}` / `{g.candidate}` · {g.metric}: **{g.verdict}** {change}"
    if flips:
        line += f"; flips: {flips}"
    harmful = ((g.details.get("flips") or {}).get("ids") or {}).get("harmful") or []
    if harmful and is_failing(g):
        shown = ", ".join(f"`{i}`" for i in harmful[:SHOWN_HARMFUL])
        more = f" and {len(harmful) - SHOWN_HARMFUL} more" if len(harmful) > SHOWN_HARMFUL else ""
        line += f"\n  - harmful: {shown}{more}"
    return line


def artifacts_line(environ: Mapping[str, str]) -> str:
    """Where the full reports are: the workflow run's artifact when on GitHub Actions, else the folder."""
    server, repository, run = (environ.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"))
    if server and repository and run:
        url = f"{server}/{repository}/actions/runs/{run}"
        return (f"Full reports: [`index.html`, `<suite>.md`, `results.json`]({url}#artifacts) "
                f"(the `{ARTIFACT}` artifact of [this run]({url})).")
    return "Full reports: `index.html` (open it locally), `index.md`, `<suite>.md` and `results.json` beside this file."


def _fit(head: Sequence[str], items: Sequence[str], tail: Sequence[str], limit: int) -> str:
    """``head``, as many ``items`` as fit under ``limit`` characters, a "… N more" line, ``tail``."""
    fixed = "\n".join([*head, *tail])
    reserve = len(fixed) + 64  # room for the "… N more" line and the joins
    kept: list[str] = []
    used = 0
    for item in items:
        if used + len(item) + 1 > limit - reserve:
            break
        kept.append(item)
        used += len(item) + 1
    left = len(items) - len(kept)
    more = [f"… {left} more (see the full reports)"] if left else []
    return "\n".join([*head, *kept, *more, "", *tail]) + "\n"


def pr_comment(state: RunState, *, environ: Mapping[str, str] | None = None,
               limit: int = GITHUB_COMMENT_LIMIT) -> str:
    """The comment body: verdict line per suite, regressions first, flip counts, artifact links."""
    environ = os.environ if environ is None else environ
    suites = sorted(state.suites(), key=lambda s: (suite_verdict(state, s).status != FAIL, s))
    head = [MARKER, f"## ft-harness: {_clip(run_verdict(state).line)}", ""]
    items = [f"- `{s}`: {_clip(suite_verdict(state, s).line)}" for s in suites]
    gates = [g for s in suites for g in suite_gates(state, s)]
    failing = [g for g in gates if is_failing(g)]
    others = [g for g in gates if not is_failing(g)]
    if failing:
        items += ["", "### Regressions", ""] + [_gate_line(g) for g in failing]
    if others:
        items += ["", "### Other gated metrics", ""] + [_gate_line(g) for g in others]
    return _fit(head, items, [artifacts_line(environ)], limit)


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotations(state: RunState) -> list[str]:  # type: ignore[no-redef]  # the name is public API
    """One ``::error title=...::...`` workflow command per failing gate (and per failed test)."""
    lines = []
    for suite in state.suites():
        for g in suite_gates(state, suite):
            if is_failing(g):
                title = f"ft-harness: {g.suite}/{g.candidate} {g.metric} {g.verdict}"
                body = g.message + (f" Flips: {_flips(g)}." if _flips(g) else "")
                lines.append(f"::error title={_escape_property(title)}::{_escape_data(body)}")
    for problem in state.problems:
        if problem.category != "regression":
            title = f"ft-harness: {problem.category}"
            lines.append(f"::error title={_escape_property(title)}::{_escape_data(problem.nodeid + ': ' + problem.message)}")
    return lines


def github_annotations(state: RunState, environ: Mapping[str, str] | None = None) -> list[str]:
    """:func:`annotations` when running in GitHub Actions (``GITHUB_ACTIONS`` set), else none."""
    environ = os.environ if environ is None else environ
    return annotations(state) if environ.get("GITHUB_ACTIONS") else []  # type: ignore[operator]

"""``reports/index.html``: one static, self-contained page for reviewers (no server, no CDN).

Verdicts first; per suite each candidate's flip decomposition against its baseline and against the
candidates it was compared with; a table of every example (baseline output, current output,
reference, per-metric scores and their change, a word-level diff of the two outputs) filterable by
flip type, slice and metric and searchable; the plots (embedded); and every section of the suite's
markdown page rendered below, so a section added to the markdown report shows here too.

It is a view of the run's records: every number is read from them (the flips from the gate and
comparison records), none is computed here. Jinja2 renders it with autoescaping on, and the
markdown is rendered with raw HTML disabled, so a model's output is always shown as text.
"""

from __future__ import annotations

import base64
import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.fmt import fmt_metric
from harness.report.markdown import strip_run_info
from harness.report.verdicts import is_failing, run_verdict, suite_gates, suite_verdict
from harness.results import PAIRED_SCORE, EvalResult, GateRecord, RunState

if TYPE_CHECKING:
    import jinja2

TEMPLATE = "report.html.j2"
NO_BASELINE = "no baseline"


@dataclass
class Segment:
    """A run of words in the diff of two outputs: ``op`` is equal, delete or insert."""

    op: str
    text: str


def word_diff(before: str, after: str) -> list[Segment]:
    """The word-level diff of ``before`` → ``after`` (difflib over whitespace-separated words)."""
    old, new = before.split(), after.split()
    segments: list[Segment] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if tag == "equal":
            segments.append(Segment("equal", " ".join(old[i1:i2])))
            continue
        if i2 > i1:
            segments.append(Segment("delete", " ".join(old[i1:i2])))
        if j2 > j1:
            segments.append(Segment("insert", " ".join(new[j1:j2])))
    return segments


@dataclass
class Score:
    """One metric's per-example score of the current run and of the baseline (None: unknown)."""

    metric: str
    current: str
    baseline: str
    change: str
    flip: str


@dataclass
class Row:
    """One example of one candidate in the examples table."""

    candidate: str
    example_id: str
    slices: list[str]
    input: str
    reference: str
    output: str
    baseline_output: str | None
    diff: list[Segment]
    scores: list[Score]

    @property
    def flips(self) -> str:
        """``metric:flip`` tokens for the page's filter."""
        return " ".join(f"{s.metric}:{s.flip.replace(' ', '-')}" for s in self.scores)


@dataclass
class FlipLine:
    """A candidate's flip counts on one metric against one reference (the baseline or a candidate)."""

    candidate: str
    metric: str
    against: str
    counts: Mapping[str, int]
    outputs_compared: bool
    verdict: str = ""
    failing: bool = False


@dataclass
class SuiteView:
    """Everything the page shows of one suite."""

    name: str
    anchor: str
    status: str
    line: str
    warnings: Sequence[str]
    metrics: list[str]
    slices: list[str]
    flips: list[FlipLine]
    rows: list[Row]
    images: list[tuple[str, str]] = field(default_factory=list)
    details_html: str = ""


def _gate_flips(gates: Sequence[GateRecord]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(g.candidate, g.metric): g.details["flips"] for g in gates if g.details.get("flips")}


def _rows(result: EvalResult, metrics: Sequence[str], flips: Mapping[tuple[str, str], Mapping[str, Any]]) -> list[Row]:
    member: dict[str, list[str]] = {}
    for family, groups in sorted((result.slices or {}).items()):
        for name, ids in sorted(groups.items()):
            for example_id in ids:
                member.setdefault(example_id, []).append(f"{family}={name}")
    types = {metric: {i: kind for kind, ids in (flips.get((result.candidate, metric)) or {}).get("ids", {}).items()
                      for i in ids} for metric in metrics}
    rows = []
    for position, example_id in enumerate(result.example_ids):
        output = str(result.predictions[position]) if position < len(result.predictions) else ""
        baseline_output: str | None = None
        scores = []
        for metric in metrics:
            score_name = PAIRED_SCORE[metric][0]
            values = result.per_example.get(score_name)
            if values is None:
                continue
            current = float(values[position])
            recorded = flips.get((result.candidate, metric))
            kind = types[metric].get(example_id, NO_BASELINE if recorded is None else "not paired")
            before = (recorded or {}).get("before", {}).get(example_id)
            base_score: float | None = None
            if recorded is not None and kind in ("harmful", "beneficial", "churn") and before is not None:
                base_score = before["score"]
                if before.get("output") is not None:
                    baseline_output = before["output"]
            elif kind == "unchanged":
                base_score = current
                baseline_output = baseline_output if baseline_output is not None else (
                    output if recorded and recorded.get("outputs_compared") else None)
            change = current - base_score if base_score is not None else None
            scores.append(Score(metric, fmt_metric(current, metric), fmt_metric(base_score, metric),
                                fmt_metric(change, metric, signed=True) if change is not None else "", kind))
        rows.append(Row(result.candidate, example_id, member.get(example_id, []),
                        str(result.inputs[position]) if position < len(result.inputs) else "",
                        str(result.references[position]) if position < len(result.references) else "",
                        output, baseline_output,
                        word_diff(baseline_output, output) if baseline_output is not None else [], scores))
    return rows


def _flip_lines(state: RunState, suite: str, gates: Sequence[GateRecord]) -> list[FlipLine]:
    lines = [FlipLine(g.candidate, g.metric, "baseline", g.details["flips"]["counts"],
                      bool(g.details["flips"].get("outputs_compared")), g.verdict, is_failing(g))
             for g in gates if g.details.get("flips")]
    lines += [FlipLine(c.b, c.metric, c.a, c.result["flips"]["counts"],
                       bool(c.result["flips"].get("outputs_compared")))
              for c in state.comparisons if c.suite == suite and (c.result or {}).get("flips")]
    return sorted(lines, key=lambda f: (not f.failing, f.candidate, f.metric, f.against != "baseline", f.against))


def _data_uri(path: Path) -> str | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _markdown() -> Any:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).enable("table")


def render_inline(text: str) -> str:
    """One line of markdown (a verdict line) as inline HTML, raw HTML escaped."""
    return str(_markdown().renderInline(text))


def render_markdown(text: str, images_dir: Path | None = None) -> str:
    """Markdown as HTML with raw HTML disabled (escaped) and local PNGs embedded as data URIs."""
    md = _markdown()
    tokens = md.parse(text)
    for token in tokens:
        for child in token.children or []:
            if child.type == "image" and images_dir is not None:
                src = str(child.attrGet("src") or "")
                uri = _data_uri(images_dir / src) if src and "/" not in src and src.endswith(".png") else None
                if uri:
                    child.attrSet("src", uri)
    return str(md.renderer.render(tokens, md.options, {}))


def suite_view(state: RunState, suite: str, *, anchor: str, images: Sequence[tuple[str, str]] = (),
               page: str = "", images_dir: Path | None = None) -> SuiteView:
    """The view of one suite: verdict, flip counts, example rows, plots and the markdown sections."""
    results = sorted((r for r in state.results if r.suite == suite), key=lambda r: r.candidate)
    gates = suite_gates(state, suite)
    verdict = suite_verdict(state, suite)
    metrics = [m for m in PAIRED_SCORE if any(PAIRED_SCORE[m][0] in r.per_example for r in results)]
    flips = _gate_flips(gates)
    rows = [row for r in results for row in _rows(r, metrics, flips)]
    slices = sorted({s for row in rows for s in row.slices})
    shown = [(alt, uri) for alt, path in images
             if images_dir is not None and (uri := _data_uri(images_dir / path))]
    body = strip_run_info(page.split("\n", 1)[1] if page.startswith("# ") else page)  # title: the suite heading
    return SuiteView(suite, anchor, verdict.status, verdict.line, verdict.warnings, metrics, slices,
                     _flip_lines(state, suite, gates), rows, shown, render_markdown(body, images_dir))


@cache
def _environment() -> jinja2.Environment:
    """The page's Jinja environment, made once per process so its template is compiled once (a
    compile costs more than a render)."""
    from jinja2 import Environment, PackageLoader, select_autoescape
    from markupsafe import Markup

    environment = Environment(loader=PackageLoader("harness.report", "templates"),
                              autoescape=select_autoescape(default=True, default_for_string=True))
    environment.filters["markdown_inline"] = lambda text: Markup(render_inline(str(text)))
    return environment


def render_html(state: RunState, views: Sequence[SuiteView], *, date: str) -> str:
    """The whole ``index.html``."""
    verdict = run_verdict(state)
    return _environment().get_template(TEMPLATE).render(verdict=verdict, suites=views, date=date,
                                                     flip_types=("harmful", "beneficial", "churn", "unchanged",
                                                                 NO_BASELINE))

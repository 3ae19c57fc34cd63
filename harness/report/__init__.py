"""Reports of a run: ``<suite>.md`` pages, ``index.md``, ``index.html``, PNG plots, ``results.json``,
``pr-comment.md``, CI summary.

:func:`write_reports` writes everything from a :class:`harness.results.RunState`. The pages
are deterministic: the same results give byte-identical files except for the final
``## Run info`` section (date, durations, cache hits), and plots repeat byte for byte.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.jsonio import write_atomic
from harness.report.decision import run_decisions
from harness.report.html import render_html, suite_view
from harness.report.intervals import metric_intervals
from harness.report.json_out import SCHEMA_VERSION, read_results, write_results_json
from harness.report.markdown import index_page, suite_page, suite_results
from harness.report.plots import Bar, plot_loss_curves, plot_metric_bars, plot_trends
from harness.report.pr_comment import github_annotations, pr_comment
from harness.report.sections import metric_order
from harness.report.slices import write_forest_plots
from harness.report.summary import append_step_summary
from harness.report.summary import junit_properties as properties
from harness.results import RunState
from harness.text import file_stem

__all__ = ["SCHEMA_VERSION", "github_annotations", "junit_properties", "read_results", "write_reports"]


def slug(name: str) -> str:
    """A file-name-safe form of a suite name."""
    return file_stem(name) or "suite"


def _baseline_note(state: RunState, given: str | None) -> str | None:
    notes = [given] if given else []
    notes += sorted({g.details["baseline_note"] for g in state.gates if g.details.get("baseline_note")})
    return "\n".join(notes) or None


def junit_properties(state: RunState) -> list[tuple[str, str]]:
    """The run's verdicts, metrics and gate outcomes as JUnit XML ``(name, value)`` properties."""
    return properties(state)


def _suite_images(results, intervals, out_dir: Path, name: str, suite: str, gates=()) -> list[tuple[str, str]]:
    """Draw the suite's metric bars and loss curves; (alt text, relative path) of each PNG."""

    bars = {}
    for metric in metric_order(results):
        shown = [(r.candidate, intervals[r.candidate][metric]) for r in results if metric in intervals[r.candidate]]
        if shown:
            title = metric if all(i.of_aggregate for _, i in shown) else f"{metric} (per-example mean)"
            bars[title] = [Bar(candidate, i.per_example_mean, i.low, i.high) for candidate, i in shown]
    checks: dict[str, Any] = next((r.details["degenerate"] for r in results if (r.details.get("degenerate") or {}).get("chance")), {})
    lines = {k: v for k, v in (("majority class", checks.get("majority_rate")), ("chance", checks.get("chance")))
             if v is not None}
    references = {title: lines for title in bars if title.split(" ")[0] == "accuracy"} if lines else {}
    curves = {r.candidate: r.training["log_history"] for r in results if r.training and r.training.get("log_history")}
    drawn = [("metrics with 95% CI", plot_metric_bars(bars, out_dir / f"{name}-metrics.png",
                                                      title=f"{suite}: metrics with 95% CI", references=references)),
             ("training and validation loss", plot_loss_curves(curves, out_dir / f"{name}-loss.png",
                                                               title=f"{suite}: training / validation loss"))]
    trends = _trends(gates)
    if trends:
        drawn.append(("gated metrics across baseline updates (reports/history.jsonl)",
                      plot_trends(trends, out_dir / f"{name}-trend.png", title=f"{suite}: trend")))
    return [(alt, path.name) for alt, path in drawn if path is not None]


def _trends(gates) -> dict[str, dict[str, list[tuple[str, float]]]]:
    """Per gated metric and candidate, the recorded history values (by date) and this run's value."""
    trends: dict[str, dict[str, list[tuple[str, float]]]] = {}
    for g in gates:
        points = [(str(p["date"])[:10], float(p["value"])) for p in g.details.get("history") or []]
        if points and isinstance(g.current, (int, float)):
            trends.setdefault(g.metric, {})[g.candidate] = [*points, ("now", float(g.current))]
    return trends


def _search_images(results, out_dir: Path, name: str, suite: str) -> dict[str, str]:
    """One bar chart of trial selection scores per search candidate: candidate -> relative path."""

    images = {}
    for r in results:
        trials = [t for t in ((r.training or {}).get("search") or {}).get("trials") or []
                  if isinstance(t.get("score"), (int, float))]
        bars = {"selection score": [Bar(f"trial {t.get('trial')}", float(t["score"]), float(t["score"]),
                                        float(t["score"])) for t in trials]}
        best = next((i for i, t in enumerate(trials) if t.get("best")), None)
        plot = plot_metric_bars(bars, out_dir / f"{name}-{slug(r.candidate)}-trials.png",
                                title=f"{suite}/{r.candidate}: search trials",
                                selected={"selection score": best} if best is not None else None)
        if plot is not None:
            images[r.candidate] = plot.name
    return images


def write_reports(state: RunState, out_dir: Path, *, baseline_note: str | None = None) -> list[Path]:
    """Write every report file for ``state`` into ``out_dir``; returns the paths written."""

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    date = datetime.now(timezone.utc).isoformat(timespec="seconds")
    note = _baseline_note(state, baseline_note)

    state.decisions = run_decisions(state)  # the "fine-tune or prompt?" figures, also in results.json
    intervals = {(r.suite, r.candidate): metric_intervals(r) for r in state.results}
    written: list[Path] = []
    pages: dict[str, str] = {}
    views = []
    for suite in state.suites():
        name = slug(suite)
        results = suite_results(state, suite)
        per_candidate = {r.candidate: intervals[(r.suite, r.candidate)] for r in results}
        images = _suite_images(results, per_candidate, out_dir, name, suite,
                               [g for g in state.gates if g.suite == suite])
        written += [out_dir / path for _, path in images]
        search_images = _search_images(results, out_dir, name, suite)
        written += [out_dir / path for path in search_images.values()]
        slice_images = write_forest_plots(state, suite, out_dir, name)
        written += [out_dir / path for path in slice_images.values()]
        page = out_dir / f"{name}.md"
        write_atomic(page, suite_page(state, suite, intervals=per_candidate, images=images, date=date,
                                      baseline_note=note, search_images=search_images,
                                      slice_images=slice_images))
        pages[suite] = page.name
        written.append(page)
        views.append(suite_view(state, suite, anchor=f"suite-{name}", images=images, images_dir=out_dir,
                                page=page.read_text(encoding="utf-8")))
    index = out_dir / "index.md"
    write_atomic(index, index_page(state, pages, date=date, baseline_note=note))
    written.append(index)
    for r in state.results:  # recorded, so every view (MLflow too) reads the same bounds
        r.details["intervals"] = {metric: {"low": i.low, "high": i.high, "per_example_mean": i.per_example_mean,
                                           "of_aggregate": i.of_aggregate}
                                  for metric, i in sorted(intervals[(r.suite, r.candidate)].items())}
    written.append(write_results_json(state, out_dir / "results.json"))
    comment = out_dir / "pr-comment.md"
    write_atomic(comment, pr_comment(state))
    written.append(comment)
    html = out_dir / "index.html"
    write_atomic(html, render_html(state, views, date=date))
    written.append(html)
    summary = append_step_summary(state, intervals)
    if summary is not None:
        written.append(summary)
    return written

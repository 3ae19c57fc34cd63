"""The report's slice parts: a slice table per candidate and a forest plot of Δ per slice.

The table lists each slice's size and every per-example metric on it with its 95 % bootstrap CI
(the same interval as the candidates table, computed on the slice's examples), then the gated
metric's Δ against the baseline with its interval, adjusted p and verdict. The forest plot draws
one row per slice: Δ against the baseline (from the gate) or, without one, against the candidate
it was compared with (from the A/B comparison), with its interval.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.fmt import fmt_int, fmt_interval, fmt_metric, fmt_p
from harness.gate.slice_compare import subset_result
from harness.metrics.registry import paired_in
from harness.report import plots
from harness.report.intervals import metric_intervals
from harness.report.tables import markdown_table
from harness.results import EvalResult, GateRecord, RunState


def _gate_rows(gates: Sequence[GateRecord], candidate: str) -> list[tuple[str, dict[str, Any]]]:
    return [(g.metric, row) for g in gates if g.candidate == candidate for row in g.details.get("slices") or []]


def forest_rows(state: RunState, suite: str, candidate: str) -> tuple[str, list[tuple[str, float, float, float]]]:
    """(what Δ is against, [(label, Δ, low, high)]): vs the baseline where gated, else vs the compared candidate."""
    gates = [g for g in state.gates if g.suite == suite]
    rows = _gate_rows(gates, candidate)
    if rows:
        metric = rows[0][0]
        return (f"Δ {metric} vs baseline",
                [(row["label"], row["delta"], *row["ci"]) for m, row in rows if m == metric])
    return _compared_rows(state, suite, candidate)


def forest_tolerance(state: RunState, suite: str, candidate: str) -> float | None:
    """The allowed drop of the metric the forest plot shows against the baseline (None: not gated)."""
    rows = _gate_rows([g for g in state.gates if g.suite == suite], candidate)
    allowed = rows[0][1].get("allowed_drop") if rows else None
    return float(allowed) if isinstance(allowed, (int, float)) and math.isfinite(allowed) else None


def _compared_rows(state: RunState, suite: str, candidate: str) -> tuple[str, list[tuple[str, float, float, float]]]:
    """Δ per slice against the candidate it was compared with (no baseline to gate against)."""
    for comparison in state.comparisons:
        if comparison.suite == suite and comparison.b == candidate and comparison.result.get("slices"):
            metric = comparison.metric
            shown = [(r["label"], r.get("difference", math.nan), *(r.get("ci") or (math.nan, math.nan)))
                     for r in comparison.result["slices"]]
            return f"Δ {metric} vs {comparison.a}", shown
    return "", []


def plot_forest(rows: Sequence[tuple[str, float, float, float]], path: Path, *, title: str, xlabel: str,
                allowed_drop: float | None = None) -> Path | None:
    """One row per slice: Δ as a point, its interval as a line, a dashed line at 0 and a dotted red
    line at −``allowed_drop`` (the gate's tolerance: a slice whose interval lies left of it regressed); None if empty."""
    from matplotlib.figure import Figure


    shown = [r for r in rows if math.isfinite(r[1])]
    if not shown:
        return None
    figure = Figure(figsize=(6.4, max(2.0, 0.45 * len(shown) + 1.2)), dpi=plots.DPI, layout="constrained")
    axes = figure.subplots()
    positions = list(range(len(shown)))[::-1]
    for y, (_, delta, low, high) in zip(positions, shown, strict=True):
        if math.isfinite(low) and math.isfinite(high):
            axes.plot([low, high], [y, y], color="C0", linewidth=2)
        axes.plot([delta], [y], "o", color="C3" if math.isfinite(high) and high < 0 else "C0")
    axes.axvline(0.0, color="grey", linestyle="--", linewidth=1)
    if allowed_drop is not None:
        axes.axvline(-allowed_drop, color="C3", linestyle=":", linewidth=1.5, label=f"tolerance −{allowed_drop:.3g}")
        axes.legend(loc="lower right", fontsize="small")
    axes.set_yticks(positions, [r[0] for r in shown])
    axes.set_xlabel(xlabel)
    axes.grid(axis="x", alpha=0.3)
    figure.suptitle(title)
    return plots._save(figure, path)


def write_forest_plots(state: RunState, suite: str, out_dir: Path, name: str) -> dict[str, str]:
    """Draw each candidate's forest plot; candidate -> file name (relative to ``out_dir``)."""
    images = {}
    for result in sorted((r for r in state.results if r.suite == suite and r.slices), key=lambda r: r.candidate):
        label, rows = forest_rows(state, suite, result.candidate)
        if not rows:
            continue
        safe = "".join(c if c.isalnum() or c in "._-" else "-" for c in result.candidate)
        path = plot_forest(rows, out_dir / f"{name}-{safe}-slices.png", title=f"{suite}/{result.candidate}: slices",
                           xlabel=f"{label} (interval)", allowed_drop=forest_tolerance(state, suite, result.candidate))
        if path is not None:
            images[result.candidate] = path.name
    return images


def _metrics(result: EvalResult) -> list[str]:
    return paired_in(result.metrics)


def slice_table(result: EvalResult, gates: Sequence[GateRecord]) -> str:
    """Slices x per-example metrics (value [95 % CI]) and the gated metrics' Δ vs baseline and verdict."""
    metrics = _metrics(result)
    verdicts = {(m, row["label"]): row for m, row in _gate_rows(gates, result.candidate)}
    gated = list(dict.fromkeys(m for m, _ in verdicts))
    headers = ["slice", "n", *metrics] + [h for m in gated for h in (f"Δ {m} vs baseline", "p (adj.)", "verdict")]
    rows = []
    for family, groups in result.slices.items():
        for name, ids in groups.items():
            sub = subset_result(result, ids)
            intervals = metric_intervals(sub)
            row = [f"{family}: {name}", fmt_int(sub.n)]
            for metric in metrics:
                value, interval = sub.metrics.get(metric), intervals.get(metric)
                text = fmt_metric(value, metric) if value is not None else "n/a"
                row.append(text + (f" {fmt_interval((interval.low, interval.high), metric)}" if interval else ""))
            for metric in gated:
                v = verdicts.get((metric, f"{family}: {name}"))
                if v is None:
                    row += ["", "", ""]
                    continue
                delta = (f"{fmt_metric(v['delta'], metric, signed=True)} "
                         f"{fmt_interval(v['ci'], metric, signed=True)}") if v.get("baseline") is not None else "n/a"
                row += [delta, fmt_p(v["p_value"]) if v.get("tested") else "",
                        v["verdict"] if v.get("tested") else v.get("reason", "")]
            rows.append(row)
    return markdown_table(headers, rows)


def slices_section(state: RunState, suite: str, images: Mapping[str, str] | None = None) -> str:
    """``## Slices``: one table (and forest plot) per candidate whose result carries slices."""
    results = sorted((r for r in state.results if r.suite == suite and r.slices), key=lambda r: r.candidate)
    if not results:
        return ""
    gates = [g for g in state.gates if g.suite == suite]
    correction = next((g.details.get("slice_correction") for g in gates if g.details.get("slices")), "holm")
    # the slice tests' own level (a hand-set floor's record has slices but no overall interval)
    confidence = next((row["confidence"] for g in gates for row in g.details.get("slices") or ()
                       if isinstance(row.get("confidence"), (int, float))), 0.9)
    blocks = []
    for result in results:
        block = f"### {result.candidate}\n\n{slice_table(result, gates)}\n"
        if images and result.candidate in images:
            block += f"\n![{result.candidate}: Δ per slice]({images[result.candidate]})\n"
        blocks.append(block)
    note = ("Values: 95% bootstrap CI on the slice's examples. Δ vs baseline: paired on the slice's unchanged "
            f"examples with the overall test ({confidence:.0%} interval); p-values "
            f"{'Holm' if correction == 'holm' else 'Benjamini-Hochberg'}-adjusted across slices x gated metrics. "
            "A slice below min_slice_size is not tested and shows its MDE: the smallest drop it could show.")
    return "## Slices\n\n" + "\n".join(blocks) + f"\n{note}\n\n"

"""PNG plots for the reports: training / validation loss curves and metric bars with CI whiskers.

Rendering is deterministic (Agg canvas, fixed figure size and dpi, no ``Software`` or date
metadata), so the same inputs give byte-identical files. matplotlib is imported only here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FIGURE_SIZE = (6.4, 3.6)
DPI = 100
_PNG_METADATA = {"Software": None}


@dataclass(frozen=True)
class Bar:
    """One candidate's value of one metric with its confidence interval (NaN when unknown)."""

    candidate: str
    value: float
    low: float = math.nan
    high: float = math.nan


def _figure(ncols: int = 1):
    from matplotlib.figure import Figure

    width, height = FIGURE_SIZE
    figure = Figure(figsize=(max(width, 3.2 * ncols), height), dpi=DPI, layout="constrained")
    axes = figure.subplots(1, ncols, squeeze=False)[0]
    return figure, list(axes)


def _save(figure: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=DPI, metadata=_PNG_METADATA)
    return path


def loss_points(log_history: Sequence[dict[str, Any]]) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """(train, validation) ``(step, loss)`` points from a Trainer ``log_history``."""
    train, validation = [], []
    for entry in log_history:
        step = entry.get("step", entry.get("epoch"))
        if step is None or entry.get("final_evaluation"):  # the kept model's re-evaluation, not a point in time
            continue
        if isinstance(entry.get("loss"), (int, float)):
            train.append((float(step), float(entry["loss"])))
        if isinstance(entry.get("eval_loss"), (int, float)):
            validation.append((float(step), float(entry["eval_loss"])))
    return train, validation


def plot_loss_curves(curves: dict[str, Sequence[dict[str, Any]]], path: Path, *, title: str) -> Path | None:
    """One line per candidate for training loss (solid) and validation loss (dashed); None if empty."""
    series = {name: loss_points(history) for name, history in sorted(curves.items())}
    series = {name: pts for name, pts in series.items() if pts[0] or pts[1]}
    if not series:
        return None
    figure, (axes,) = _figure()
    for index, (name, (train, validation)) in enumerate(series.items()):
        color = f"C{index % 10}"
        if train:
            axes.plot(*zip(*train, strict=True), color=color, label=f"{name} train")
        if validation:
            axes.plot(*zip(*validation, strict=True), color=color, linestyle="--", marker="o",
                      markersize=3, label=f"{name} validation")
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    return _save(figure, path)


def drawn_panels(bars: Mapping[str, Sequence[Bar]]) -> dict[str, list[Bar]]:
    """The panels worth a plot: a metric every candidate scores 0 on (interval included) says nothing."""
    def zero(b: Bar) -> bool:
        return all(not math.isfinite(v) or v == 0 for v in (b.value, b.low, b.high))

    return {metric: list(values) for metric, values in bars.items() if values and not all(map(zero, values))}


def plot_metric_bars(bars: Mapping[str, Sequence[Bar]], path: Path, *, title: str,
                     references: Mapping[str, Mapping[str, float]] | None = None,
                     selected: Mapping[str, int] | None = None) -> Path | None:
    """One panel per metric (all-zero panels left out), one bar per candidate with its CI as whiskers;
    ``references`` draws labelled horizontal lines per panel (majority class, chance), ``selected``
    outlines and labels one bar per panel (the chosen search trial). None if nothing to draw."""
    panels = drawn_panels(bars)
    if not panels:
        return None
    figure, axes_list = _figure(len(panels))
    for axes, (metric, values) in zip(axes_list, panels.items(), strict=True):
        positions = list(range(len(values)))
        heights = [b.value if math.isfinite(b.value) else 0.0 for b in values]
        lower = [b.value - b.low if math.isfinite(b.low) else 0.0 for b in values]
        upper = [b.high - b.value if math.isfinite(b.high) else 0.0 for b in values]
        drawn = axes.bar(positions, heights, color=[f"C{i % 10}" for i in positions],
                         yerr=[lower, upper], capsize=4)
        chosen = (selected or {}).get(metric)
        if chosen is not None and 0 <= chosen < len(values):
            drawn[chosen].set_edgecolor("black")
            drawn[chosen].set_linewidth(2.5)
            axes.annotate("selected", (chosen, heights[chosen]), ha="center", va="bottom",
                          xytext=(0, 4), textcoords="offset points")
        for i, (name, level) in enumerate(sorted((references or {}).get(metric, {}).items())):
            axes.axhline(level, color="grey", linestyle=("--", ":", "-.")[i % 3], linewidth=1,
                         label=f"{name} {level:.3g}")
        if (references or {}).get(metric):
            axes.legend(loc="lower right", fontsize="small")
        axes.set_xticks(positions, [b.candidate for b in values], rotation=30, ha="right")
        axes.set_title(metric)
        axes.grid(axis="y", alpha=0.3)
    figure.suptitle(title)
    return _save(figure, path)


def plot_trends(trends: Mapping[str, Mapping[str, Sequence[tuple[str, float]]]], path: Path, *,
                title: str) -> Path | None:
    """One panel per gated metric: each candidate's value at every baseline update, then now; None if empty."""
    panels = {metric: {c: list(p) for c, p in lines.items() if p} for metric, lines in trends.items()}
    panels = {metric: lines for metric, lines in panels.items() if lines}
    if not panels:
        return None
    figure, axes_list = _figure(len(panels))
    for axes, (metric, lines) in zip(axes_list, sorted(panels.items()), strict=True):
        for index, (candidate, points) in enumerate(sorted(lines.items())):
            axes.plot(range(len(points)), [v for _, v in points], color=f"C{index % 10}", marker="o",
                      markersize=3, label=candidate)
        longest = max(lines.values(), key=len)
        axes.set_xticks(range(len(longest)), [label for label, _ in longest], rotation=30, ha="right",
                        fontsize="small")
        axes.set_title(f"{metric} across baseline updates")
        axes.grid(alpha=0.3)
        axes.legend(fontsize="small")
    figure.suptitle(title)
    return _save(figure, path)

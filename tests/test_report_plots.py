"""What the report's plots draw: no all-zero panel, majority / chance lines, the forest plot's
tolerance line, the selected search trial."""

from __future__ import annotations

import math

import pytest

from harness.report import plots
from harness.report.plots import Bar, plot_metric_bars
from harness.report.slices import plot_forest


@pytest.fixture
def figures(monkeypatch):
    drawn = []

    def keep(figure, path):
        drawn.append(figure)
        return path

    monkeypatch.setattr(plots, "_save", keep)
    return drawn


def _hlines(axes) -> list[float]:
    return [line.get_ydata()[0] for line in axes.get_lines() if len(set(line.get_ydata())) == 1
            and list(line.get_xdata()) == [0, 1]]


def test_an_all_zero_metric_gets_no_panel_and_accuracy_gets_its_reference_lines(figures, tmp_path):
    bars = {"accuracy": [Bar("base", 0.49, 0.42, 0.56), Bar("lora", 0.7, 0.64, 0.76)],
            "exact_match": [Bar("base", 0.0, 0.0, 0.0), Bar("lora", 0.0, math.nan, math.nan)]}
    plot_metric_bars(bars, tmp_path / "m.png", title="t", references={"accuracy": {"majority class": 0.5,
                                                                                   "chance": 0.5}})
    [axes] = figures[0].axes
    assert axes.get_title() == "accuracy"
    assert sorted(_hlines(axes)) == [0.5, 0.5]
    assert [t.get_text() for t in axes.get_legend().get_texts()] == ["chance 0.5", "majority class 0.5"]
    assert plot_metric_bars({"exact_match": bars["exact_match"]}, tmp_path / "z.png", title="t") is None


def test_the_selected_trial_is_outlined_and_labelled(figures, tmp_path):
    trials = {"selection score": [Bar(f"trial {i}", s, s, s) for i, s in enumerate([0.61, 0.55, 0.58])]}
    plot_metric_bars(trials, tmp_path / "t.png", title="t", selected={"selection score": 1})
    [axes] = figures[0].axes
    widths = [patch.get_linewidth() for patch in axes.patches]
    assert widths[1] == 2.5 and widths[0] != 2.5 and widths[2] != 2.5
    assert [t.get_text() for t in axes.texts] == ["selected"]


def test_the_forest_plot_draws_the_tolerance(figures, tmp_path):
    rows = [("label: positive", 0.01, -0.02, 0.04), ("label: negative", -0.08, -0.12, -0.04)]
    plot_forest(rows, tmp_path / "f.png", title="t", xlabel="Δ accuracy vs baseline", allowed_drop=0.03)
    [axes] = figures[0].axes
    vertical = sorted(line.get_xdata()[0] for line in axes.get_lines() if list(line.get_ydata()) == [0, 1])
    assert vertical == [-0.03, 0.0]
    assert [t.get_text() for t in axes.get_legend().get_texts()] == ["tolerance −0.03"]

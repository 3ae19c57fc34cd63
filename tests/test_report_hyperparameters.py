"""The report's hyperparameter column shows what a spec changed from the recorded defaults."""

from __future__ import annotations

from test_gate import correctness, make_result

from harness.report.sections import training_section

BASE = {"runtime_s": 1.0, "trainable_params": 10, "total_params": 100, "train_loss": 0.5, "log_history": []}


def _row(training: dict) -> str:
    text = training_section([make_result(correctness(10, 0.8, 1), training={**BASE, **training})])
    return next(line for line in text.splitlines() if line.startswith("| lora"))


def test_only_changed_values_are_shown_against_recorded_defaults():
    row = _row({"hyperparameters": {"learning_rate": 0.001, "r": 8, "seed": 0},
                "defaults": {"learning_rate": 0.003, "r": 8, "seed": 0}})
    assert "learning_rate=0.001 (others default)" in row
    assert "r=8" not in row and "seed=0" not in row


def test_all_values_shown_when_no_defaults_were_recorded():
    row = _row({"hyperparameters": {"learning_rate": 0.001, "r": 8}})
    assert "learning_rate=0.001, r=8" in row and "others default" not in row


def test_a_spec_that_changed_nothing_reads_defaults():
    row = _row({"hyperparameters": {"r": 8}, "defaults": {"r": 8}})
    assert "| defaults" in row.replace("|  ", "| ")

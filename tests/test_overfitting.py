"""The overfitting check and the whole-run training loss: pure functions over log histories."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.training.overfitting import (
    DEFAULT_MIN_RISE,
    detect_overfitting,
    loss_curves,
    whole_run_train_loss,
)

losses = st.floats(min_value=0.01, max_value=20.0, allow_nan=False, allow_infinity=False)


def _history(train: list[float], evals: list[float]) -> list[dict]:
    """One training log and one evaluation per epoch, as transformers' Trainer writes them."""
    history = []
    for epoch, (t, e) in enumerate(zip(train, evals, strict=True), start=1):
        history.append({"loss": t, "learning_rate": 1e-3, "epoch": float(epoch), "step": epoch})
        history.append({"eval_loss": e, "eval_runtime": 0.1, "epoch": float(epoch), "step": epoch})
    history.append({"train_loss": sum(train) / len(train), "epoch": float(len(train)), "step": len(train)})
    return history


@st.composite
def overfitting_curves(draw):
    """Validation loss falls to a minimum then rises clearly, training loss falls throughout."""
    n = draw(st.integers(min_value=3, max_value=12))
    turn = draw(st.integers(min_value=0, max_value=n - 2))
    low = draw(st.floats(min_value=0.5, max_value=5.0))
    falls = draw(st.lists(st.floats(min_value=0.01, max_value=1.0), min_size=turn, max_size=turn))
    rises = draw(st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=n - turn - 1, max_size=n - turn - 1))
    evals = [low + sum(falls[i:]) for i in range(turn)] + [low]
    level = low
    for step_up in rises:
        level += step_up
        evals.append(level)
    evals[-1] = max(evals[-1], low * (1 + 2 * DEFAULT_MIN_RISE) + 0.01)
    start = draw(st.floats(min_value=1.0, max_value=10.0))
    drops = draw(st.lists(st.floats(min_value=0.001, max_value=0.5), min_size=n, max_size=n))
    train = [start - sum(drops[:i]) * start / (sum(drops) + 1) for i in range(n)]
    return train, evals, turn


@given(overfitting_curves())
def test_a_rise_after_the_minimum_with_falling_training_loss_is_reported(curves):
    train, evals, turn = curves
    finding = detect_overfitting(_history(train, evals))
    assert finding is not None
    assert finding.turned_at_epoch == turn + 1
    assert finding.best_eval_loss == min(evals)
    assert finding.final_eval_loss == evals[-1] > finding.best_eval_loss
    assert finding.final_train_loss < finding.train_loss_at_turn
    assert f"epoch {turn + 1}" in finding.message()


@given(st.lists(losses, min_size=1, max_size=15), st.lists(losses, min_size=1, max_size=15))
def test_validation_loss_that_never_rises_is_not_overfitting(train, evals):
    n = min(len(train), len(evals))
    falling = sorted(evals[:n], reverse=True)
    assert detect_overfitting(_history(train[:n], falling)) is None


@given(st.lists(losses, min_size=2, max_size=15), st.lists(losses, min_size=2, max_size=15))
def test_training_loss_that_does_not_fall_is_not_overfitting(train, evals):
    n = min(len(train), len(evals))
    rising_train = sorted(train[:n])
    assert detect_overfitting(_history(rising_train, evals[:n])) is None


@given(overfitting_curves(), st.randoms())
def test_the_order_of_log_entries_does_not_matter(curves, rng):
    train, evals, _ = curves
    history = _history(train, evals)
    shuffled = list(history)
    rng.shuffle(shuffled)
    assert detect_overfitting(shuffled) == detect_overfitting(history)


@given(st.lists(losses, min_size=2, max_size=15), st.lists(losses, min_size=2, max_size=15))
def test_any_finding_satisfies_its_definition(train, evals):
    n = min(len(train), len(evals))
    finding = detect_overfitting(_history(train[:n], evals[:n]))
    if finding is not None:
        assert finding.final_eval_loss > finding.best_eval_loss * (1 + DEFAULT_MIN_RISE)
        assert finding.final_train_loss < finding.train_loss_at_turn
        assert finding.best_eval_loss == min(evals[:n])


def test_a_small_rise_below_the_threshold_is_noise():
    train = [3.0, 2.0, 1.0]
    assert detect_overfitting(_history(train, [2.0, 1.0, 1.005])) is None
    assert detect_overfitting(_history(train, [2.0, 1.0, 1.005]), min_rise=0.001) is not None


def test_curves_skip_the_end_of_run_summary_and_non_finite_values():
    history = [*_history([2.0, 1.0], [1.5, 1.4]), {"loss": math.nan, "step": 3, "epoch": 3.0}]
    train, evals = loss_curves(history)
    assert [p.loss for p in train] == [2.0, 1.0]
    assert [p.loss for p in evals] == [1.5, 1.4]


def _trainer_windows(per_step: list[float], log_every: int, saves: set[int]) -> tuple[list[dict], float]:
    """Log windows the way Trainer logs them (mean since the previous log), logging at every save."""
    history, last, total = [], 0, 0.0
    for step in range(1, len(per_step) + 1):
        if step % log_every == 0 or step in saves:
            window = per_step[last:step]
            history.append({"loss": sum(window) / len(window), "step": step, "epoch": step / 4})
            last = step
        total += per_step[step - 1]
    return history, total / len(per_step)


@given(st.lists(losses, min_size=2, max_size=40), st.integers(1, 7), st.data())
def test_whole_run_loss_of_a_resumed_run_equals_the_uninterrupted_mean(per_step, log_every, data):
    resumed = data.draw(st.integers(min_value=1, max_value=len(per_step) - 1))
    history, uninterrupted = _trainer_windows(per_step, log_every, {resumed})
    after = per_step[resumed:]
    resumed_run_mean = sum(after) / len(after)  # what Trainer reports after resuming
    combined = whole_run_train_loss(history, resumed_run_mean, resumed, len(per_step))
    assert combined == pytest.approx(uninterrupted, rel=1e-9)
    assert whole_run_train_loss(history, uninterrupted, None, len(per_step)) == uninterrupted

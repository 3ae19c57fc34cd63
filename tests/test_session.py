"""The session service's pure parts: typed options checked when made, examples paired by id."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.errors import HarnessError
from harness.results import EvalResult
from harness.session import OptionError, PairingError, SessionOptions, paired_scores


@settings(deadline=None)
@given(st.integers(min_value=-10**6, max_value=0))
def test_batch_size_and_repeat_below_one_are_refused_by_name(value: int):
    with pytest.raises(OptionError, match=r"^batch_size: expected an integer of at least 1, got -?\d+$"):
        SessionOptions(batch_size=value)
    with pytest.raises(OptionError, match=r"^repeat: expected an integer of at least 1, got -?\d+$"):
        SessionOptions(repeat=value)


@settings(deadline=None)
@given(st.integers(min_value=1, max_value=10**6), st.integers(min_value=1, max_value=1000))
def test_batch_size_and_repeat_of_one_or_more_are_kept(batch_size: int, repeat: int):
    options = SessionOptions(batch_size=batch_size, repeat=repeat)
    assert (options.batch_size, options.repeat) == (batch_size, repeat)


@pytest.mark.parametrize(("field", "value"), [
    ("batch_size", True), ("batch_size", 2.5), ("batch_size", "8"), ("repeat", None), ("repeat", "3"),
    ("openai_max_cost", -1.0), ("openai_max_cost", math.nan), ("openai_max_cost", math.inf),
    ("openai_max_cost", "5"), ("strict", "yes"), ("base_model", ""), ("encoder_model", "  "),
    ("spec_path", 3),
])
def test_wrong_types_and_values_name_the_option(field: str, value):
    with pytest.raises(OptionError) as caught:
        SessionOptions(**{field: value})
    assert caught.value.option == field
    assert str(caught.value).startswith(f"{field}: expected ")
    assert isinstance(caught.value, HarnessError)


def test_options_are_frozen_and_paths_typed(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("FT_HARNESS_CACHE", raising=False)
    options = SessionOptions(spec_path=str(tmp_path / "c.toml"), reports_dir=str(tmp_path / "r"), root_dir=tmp_path)
    assert options.spec_path == tmp_path / "c.toml" and isinstance(options.reports_dir, Path)
    assert options.baseline_file == tmp_path / "r" / "baseline.json"
    assert SessionOptions(baseline_path=tmp_path / "b.json").baseline_file == tmp_path / "b.json"
    assert options.cache_root == tmp_path / ".ft-cache"
    assert SessionOptions(cache_dir=tmp_path / "c").cache_root == tmp_path / "c"
    with pytest.raises(AttributeError):
        options.repeat = 3  # type: ignore[misc]


def _result(candidate: str, ids: list[str], correct: list[float], suite: str = "s") -> EvalResult:
    n = len(ids)
    return EvalResult(suite=suite, candidate=candidate, kind="x", fingerprint="f", task="classification",
                      split="eval", split_fingerprint="", example_ids=ids, inputs=[""] * n,
                      references=["a"] * n, predictions=["a"] * n,
                      metrics={"accuracy": sum(correct) / n}, per_example={"correct": correct})


@settings(deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=40), st.randoms(use_true_random=False))
def test_pairing_follows_ids_not_positions(flags: list[bool], rnd):
    ids = [f"ex{i}" for i in range(len(flags))]
    scores_b = [float(not f) for f in flags]
    order = list(range(len(ids)))
    rnd.shuffle(order)
    a = _result("a", ids, [float(f) for f in flags])
    b = _result("b", [ids[i] for i in order], [scores_b[i] for i in order])
    got_a, got_b, kind = paired_scores(a, b, "accuracy")
    assert kind == "binary"
    assert got_a == [float(f) for f in flags]
    assert got_b == scores_b  # b's score of each id sits beside a's score of the same id


def test_pairing_refuses_missing_and_repeated_ids_naming_them():
    a = _result("base", ["e1", "e2", "e3"], [1.0, 0.0, 1.0])
    b = _result("lora", ["e1", "e3", "e4"], [1.0, 1.0, 0.0])
    with pytest.raises(PairingError, match=r"1 only in 'base' \('e2'\); 1 only in 'lora' \('e4'\)"):
        paired_scores(a, b, "accuracy")
    twice = _result("lora", ["e1", "e1", "e3"], [1.0, 1.0, 0.0])
    with pytest.raises(PairingError, match=r"example id 'e1' appears twice \(positions 1 and 2\)"):
        paired_scores(a, twice, "accuracy")
    with pytest.raises(PairingError, match="of suite 'other'"):
        paired_scores(a, _result("lora", ["e1", "e2", "e3"], [1.0] * 3, suite="other"), "accuracy")

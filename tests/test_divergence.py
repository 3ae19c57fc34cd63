"""A diverged fine-tune (non-finite loss) fails as a harness error before evaluation, caches
nothing, and every JSON the harness writes is strict JSON (no NaN / Infinity tokens)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from miniproject import make_project

from harness.cli import main
from harness.jsonio import strict_dumps
from harness.training.divergence import TrainingDiverged, check_log_entry


def _strict_loads(text: str):
    def refuse(token: str):
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def test_diverged_lora_fails_as_a_harness_error_and_caches_nothing(tmp_path, capsys):
    spec = make_project(tmp_path / "project")
    spec.write_text(spec.read_text().replace("learning_rate = 3e-3", "learning_rate = 1e308"))
    cache, out = tmp_path / "cache", tmp_path / "out"
    code = main(["evaluate", "--spec", str(spec), "--suite", "mini", "--candidate", "lora",
                 "--out", str(out), "--cache-dir", str(cache)])
    err = capsys.readouterr().err
    assert code == 3, err
    message = err.strip().splitlines()[-1]
    assert "suites.mini.candidates.lora" in message
    assert "training diverged" in message and "loss is nan at step" in message
    assert not out.exists()  # never evaluated
    assert [p.name for p in (cache / "artifacts").iterdir() if p.name.startswith("adapter-")] == []
    assert not any((cache / "work").iterdir())  # no checkpoint with non-finite weights to resume from


@pytest.mark.parametrize("entry, loss", [
    ({"loss": float("nan")}, "training loss"),
    ({"eval_loss": float("inf")}, "validation loss"),
    ({"train_loss": float("-inf")}, "training loss (mean over the run)"),
])
def test_each_non_finite_loss_is_named(entry, loss):
    with pytest.raises(TrainingDiverged) as caught:
        check_log_entry({"grad_norm": 1.0, **entry}, step=7)
    assert caught.value.loss == loss and caught.value.step == 7
    assert f"{loss} is" in str(caught.value.located("spec.toml: suites.s.candidates.c"))


def test_finite_log_entries_pass():
    check_log_entry({"loss": 0.5, "eval_loss": 1.0, "grad_norm": float("nan"), "epoch": 1.0}, step=1)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=20)


@given(json_values)
def test_strict_dumps_writes_only_strict_json(value):
    parsed = _strict_loads(strict_dumps(value))

    def same(original, read):
        if isinstance(original, float):
            return read is None if not math.isfinite(original) else read == original
        if isinstance(original, (list, tuple)):
            return len(original) == len(read) and all(same(a, b) for a, b in zip(original, read, strict=True))
        if isinstance(original, dict):
            return original.keys() == read.keys() and all(same(original[k], read[k]) for k in original)
        return original == read

    assert same(value, parsed)


def test_evaluate_result_file_is_strict_json(tmp_path):
    from harness.cli.evaluate import _write
    from harness.results import EvalResult

    result = EvalResult(suite="s", candidate="c", kind="base", fingerprint="f", task="generation",
                        split="eval", split_fingerprint="g", example_ids=["1"], inputs=["x"],
                        references=["y"], predictions=[""],
                        metrics={"bleu": float("nan"), "rougeL": float("inf")},
                        per_example={"rougeL": [float("nan")]})
    files = _write(result, tmp_path)
    document = _strict_loads(Path(files["result"]).read_text(encoding="utf-8"))
    assert document["metrics"] == {"bleu": None, "rougeL": None}
    assert document["per_example"] == {"rougeL": [None]}
    for line in Path(files["outputs"]).read_text(encoding="utf-8").splitlines():
        _strict_loads(line)

"""Data-parallel evaluation on CPU: ``torchrun --nproc-per-node 2`` (accelerate's multi-CPU mode,
gloo) evaluates a candidate's eval set in two shards and writes outputs identical to one process's;
the per-prompt output cache written by two processes serves a later single-process run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import warm_python

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
       "OMP_NUM_THREADS": "1"}


def test_batch_plan_splits_whole_sorted_batches_round_robin():
    from harness.backends.hf.sharding import batch_plan, my_batches

    plan = batch_plan([5, 3, 3, 9, 1, 4, 7], 3)
    assert plan == [[4, 1, 2], [5, 0, 6], [3]]  # by (length, index), three at a time
    assert my_batches(plan, 0, 2) == [[4, 1, 2], [3]]
    assert my_batches(plan, 1, 2) == [[5, 0, 6]]
    shares = [i for rank in range(3) for b in my_batches(plan, rank, 3) for i in b]
    assert sorted(shares) == list(range(7))  # every prompt exactly once


def test_one_process_is_no_shard(monkeypatch):
    from harness.runner.sharded import process_shard

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert process_shard() is None


def _spec(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    sentiment = (FIXTURES / "sentiment" / "eval.jsonl").read_text(encoding="utf-8").splitlines()[:22]
    generation = (FIXTURES / "generation" / "eval.jsonl").read_text(encoding="utf-8").splitlines()[:14]
    (root / "sentiment.jsonl").write_text("\n".join(sentiment) + "\n", encoding="utf-8")
    (root / "generation.jsonl").write_text("\n".join(generation) + "\n", encoding="utf-8")
    # batch 4: several batches per process, the last one short
    (root / "spec.toml").write_text(
        '[harness]\nseed = 0\nbatch_size = 4\n\n'
        '[suites.labels]\ntask = "classification"\nlabels = ["positive", "negative"]\n'
        'scoring = "likelihood"\neval = "sentiment.jsonl"\n\n'
        '[suites.labels.candidates.base]\nkind = "base"\n\n'
        '[suites.text]\ntask = "generation"\neval = "generation.jsonl"\ndecode = { max_new_tokens = 12 }\n\n'
        '[suites.text.candidates.base]\nkind = "base"\n', encoding="utf-8")
    return root / "spec.toml"


def _evaluate(spec: Path, suite: str, cache: Path, out: Path, base: Path, *launcher: str) -> dict:
    args = ["-m", "harness.cli.evaluate", "--spec", str(spec), "--suite", suite, "--candidate", "base",
            "--cache-dir", str(cache), "--base-model", str(base), "--out", str(out)]
    done = (warm_python.run(args, env=ENV, timeout=300) if launcher == (sys.executable,)
            else subprocess.run([*launcher, *args], env=ENV, capture_output=True, text=True, timeout=300))
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith('{"suite"')]
    assert len(lines) == 1, done.stdout[-2000:]  # the main process alone reports (and writes)
    return json.loads(lines[0])


def _rows(summary: dict) -> list[dict]:
    return [json.loads(line) for line in Path(summary["outputs"]).read_text(encoding="utf-8").splitlines()]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("torchrun") is None, reason="torchrun is not installed")
@pytest.mark.parametrize("suite", ["labels", "text"])
def test_two_processes_write_the_outputs_of_one_process(suite, tiny_base, tmp_path):
    spec = _spec(tmp_path / "spec")
    # torchrun starts its two workers as forks of the tests' warm interpreter (they run as python would)
    torchrun = ["torchrun", "--nproc-per-node", "2", "--master-port", str(29500 + (os.getpid() % 400)),
                "--no-python", warm_python.executable()]
    two = _evaluate(spec, suite, tmp_path / "cache-2", tmp_path / "out-2", tiny_base, *torchrun)
    one = _evaluate(spec, suite, tmp_path / "cache-1", tmp_path / "out-1", tiny_base, sys.executable)
    assert two["processes"] == 2 and one["processes"] == 1
    assert two["outputs_cache"] == "miss" and one["outputs_cache"] == "miss"
    rows_two, rows_one = _rows(two), _rows(one)
    assert len(rows_two) == (22 if suite == "labels" else 14)
    assert rows_two == rows_one  # ids, inputs, predictions and per-example scores, in example order
    assert two["metrics"] == one["metrics"]
    assert len({row["prediction"] for row in rows_one}) >= 1

    # the cache written by two processes serves one process: nothing is generated again
    again = _evaluate(spec, suite, tmp_path / "cache-2", tmp_path / "out-again", tiny_base, sys.executable)
    assert again["outputs_cache"] == "hit" and _rows(again) == rows_one

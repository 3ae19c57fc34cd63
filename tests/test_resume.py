"""Resuming interrupted training: a run killed after its first checkpoint continues from it on the
next build and ends where an uninterrupted run with the same seed ends."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
import warm_python

from harness.training.resume import last_complete_checkpoint

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SPEC = """[harness]
seed = 0

[suites.play]
task = "classification"
labels = ["positive", "negative"]
train = "train.jsonl"
validation = "validation.jsonl"
eval = "validation.jsonl"

[suites.play.candidates.lora]
kind = "lora"
params = { n_epochs = 2, batch_size = 4, r = 4, alpha = 8, save_steps = 2, logging_steps = 3 }
"""
TOTAL_STEPS = 8  # 16 examples / batch 4 x 2 epochs


def _project(root: Path) -> Path:
    for split, n in (("train", 16), ("validation", 4)):
        lines = (FIXTURES / "sentiment" / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()[:n]
        (root / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "spec.toml").write_text(SPEC, encoding="utf-8")
    return root / "spec.toml"


def _build(spec: Path, base: Path, cache: Path, messages: list[str]):
    from harness.cache import CacheStore
    from harness.context import BuildContext, BuildOptions
    from harness.kinds import build_candidate
    from harness.spec import load_spec

    ctx = BuildContext(spec=load_spec(spec), cache=CacheStore(cache), base_model=str(base),
                       options=BuildOptions(cache_root=cache), log=messages.append)
    suite = ctx.spec.suite("play")
    return build_candidate(ctx, suite, suite.candidate("lora")), ctx


def _adapter_weights(candidate) -> dict:
    from safetensors.torch import load_file

    return load_file(str(Path(candidate.adapter_dir) / "adapter_model.safetensors"))


def _losses(summary) -> dict[int, float]:
    return {e["step"]: e["loss"] for e in summary.log_history if "loss" in e}


@pytest.mark.slow
def test_a_killed_run_resumes_from_its_checkpoint_and_ends_like_an_uninterrupted_one(tiny_base, tmp_path):
    import torch

    spec = _project(tmp_path)
    cache = tmp_path / "cache"
    command = ["-m", "harness.cli.train", "--spec", str(spec), "--suite", "play",
               "--candidate", "lora", "--cache-dir", str(cache), "--base-model", str(tiny_base)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    with open(tmp_path / "first.log", "wb") as log:
        process = warm_python.Popen(command, stdout=log.fileno(), stderr=log.fileno(), env=env)
        try:
            deadline = time.monotonic() + 300
            # a whole checkpoint (its trainer state written out), not merely its state file begun
            while not any(last_complete_checkpoint(c, remove_partial=False) for c in cache.glob("work/*/checkpoints")):
                assert process.poll() is None, (tmp_path / "first.log").read_text(errors="replace")[-3000:]
                assert time.monotonic() < deadline, "no checkpoint appeared"
                time.sleep(0.02)
            os.kill(process.pid, signal.SIGKILL)
        finally:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL
    assert not list(cache.glob("artifacts/*"))  # killed before anything was stored
    work = next(cache.glob("work/*"))
    checkpoint = last_complete_checkpoint(work / "checkpoints", remove_partial=False)
    step = int(checkpoint.name.split("-")[1])
    assert 2 <= step < TOTAL_STEPS

    messages: list[str] = []
    resumed, ctx = _build(spec, tiny_base, cache, messages)
    assert any(m.startswith(f"resuming from checkpoint-{step} ") for m in messages), messages
    assert resumed.training.resumed_from_step == step
    assert ctx.events == {"trained": 1, "resumed": 1}
    assert not work.exists()  # the work folder goes once the artifact is stored

    fresh, _ = _build(spec, tiny_base, tmp_path / "uninterrupted", [])
    assert fresh.training.resumed_from_step is None
    assert resumed.training.train_loss == pytest.approx(fresh.training.train_loss, abs=1e-4)
    assert resumed.training.eval_loss == pytest.approx(fresh.training.eval_loss, abs=1e-4)
    resumed_losses, fresh_losses = _losses(resumed.training), _losses(fresh.training)
    assert resumed_losses.keys() == fresh_losses.keys() and max(fresh_losses) == TOTAL_STEPS
    assert all(resumed_losses[s] == pytest.approx(fresh_losses[s], abs=1e-4) for s in fresh_losses)
    a, b = _adapter_weights(resumed), _adapter_weights(fresh)
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_the_last_whole_checkpoint_wins_and_cut_short_ones_are_cleared(tmp_path):
    def checkpoint(step: int, state: dict | str | None) -> Path:
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        (folder / "adapter_model.safetensors").write_bytes(b"weights")
        if state is not None:
            text = state if isinstance(state, str) else json.dumps(state)
            (folder / "trainer_state.json").write_text(text, encoding="utf-8")
        return folder

    assert last_complete_checkpoint(tmp_path / "absent") is None
    checkpoint(2, {"global_step": 2})
    fourth = checkpoint(4, {"global_step": 4})
    checkpoint(10, {"global_step": 10})
    (tmp_path / "checkpoint-10" / "trainer_state.json").write_text('{"global_st', encoding="utf-8")  # cut short
    checkpoint(12, None)  # killed before the trainer state was written
    checkpoint(14, {"global_step": 13})  # not the state of this checkpoint
    (tmp_path / "runs").mkdir()
    assert last_complete_checkpoint(tmp_path, remove_partial=False) == fourth
    assert (tmp_path / "checkpoint-12").exists()
    assert last_complete_checkpoint(tmp_path) == fourth
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-2", "checkpoint-4", "runs"]

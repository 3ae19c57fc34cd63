"""Encoder training goes through the one training lifecycle: its parameters are checked like the
causal-LM trainers' (named by key path), alpha is never truncated, a killed run resumes from its
checkpoint and ends like an uninterrupted one, and out-of-memory becomes advice."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import replace
from pathlib import Path

import pytest
import warm_python

from harness.errors import SpecError, TrainingError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
LABELS = ["positive", "negative"]
TOTAL_STEPS = 8  # 16 examples / batch 4 x 2 epochs
RESUME_PARAMS = "n_epochs = 2, batch_size = 4, learning_rate = 5e-3, r = 4, alpha = 8, save_steps = 2, logging_steps = 3"


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory) -> Path:
    """A BertModel (hidden 32, 2 layers) with a WordPiece tokenizer trained on the fixture corpus."""
    from harness.backends.encoder.tiny import TinyEncoderConfig, build_tiny_encoder
    from harness.data.corpus import read_corpus

    out = tmp_path_factory.mktemp("tiny-encoder")
    config = TinyEncoderConfig(vocab_size=600, hidden_size=32, intermediate_size=64, num_hidden_layers=2)
    return build_tiny_encoder(out, read_corpus(FIXTURES / "corpus.txt"), config)


def _project(root: Path, encoder: Path, candidates: str, *, n_train: int = 16) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("validation", 4), ("eval", 4)):
        lines = (FIXTURES / "sentiment" / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()[:n]
        (root / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "spec.toml").write_text(
        '[harness]\nseed = 0\n\n[suites.enc]\ntask = "classification"\nlabels = ["positive", "negative"]\n'
        'train = "train.jsonl"\nvalidation = "validation.jsonl"\neval = "eval.jsonl"\n\n'
        + candidates.replace("ENCODER", str(encoder)), encoding="utf-8")
    return root / "spec.toml"


def _candidate(kind: str, params: str, name: str = "c") -> str:
    return f'[suites.enc.candidates.{name}]\nkind = "{kind}"\nbase_model = "ENCODER"\nparams = {{ {params} }}\n'


def _context(spec: Path, cache: Path, messages: list[str] | None = None):
    from harness.cache import CacheStore
    from harness.context import BuildContext, BuildOptions
    from harness.spec import load_spec

    sink = messages if messages is not None else []
    return BuildContext(spec=load_spec(spec), cache=CacheStore(cache), options=BuildOptions(cache_root=cache),
                        log=sink.append)


def _build(ctx, name: str = "c"):
    from harness.kinds import build_candidate

    suite = ctx.spec.suite("enc")
    return build_candidate(ctx, suite, suite.candidate(name))


# -- value checks -------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["encoder-lora", "encoder-full"])
@pytest.mark.parametrize(("params", "key", "message"), [
    ("learning_rate = -1e-3", "learning_rate", "expected a positive number, got -0.001"),
    ("batch_size = 2.5", "batch_size", "expected a positive integer, got 2.5"),
    ("rank = 8", "rank", "unknown"),
    ('precision = "half"', "precision", "expected one of auto, fp16, bf16 or no"),
    ("early_stopping_patience = 0", "early_stopping_patience", "expected a positive integer"),
])
def test_bad_encoder_parameters_are_named_by_key_path(tiny_encoder, tmp_path, kind, params, key, message):
    spec = _project(tmp_path, tiny_encoder, _candidate(kind, params))
    with pytest.raises(SpecError) as raised:
        _build(_context(spec, tmp_path / "cache"))  # refused at load or when planned, never trained
    assert f"spec.toml: suites.enc.candidates.c.params.{key}: " in str(raised.value)
    assert message in str(raised.value)
    assert not list((tmp_path / "cache").glob("artifacts/encoder-[am]*"))


@pytest.mark.parametrize(("params", "key", "message"), [
    ("alpha = 0", "alpha", "expected a positive number, got 0"),
    ('alpha = "32"', "alpha", "expected a positive number, got '32'"),
    ("r = 0", "r", "expected a positive integer, got 0"),
    ("dropout = 1.5", "dropout", "expected a number in [0, 1), got 1.5"),
    ('bias = "some"', "bias", "expected one of none, all, lora_only"),
    ("target_modules = []", "target_modules", "expected"),
])
def test_bad_encoder_lora_values_are_refused_by_the_lifecycle_itself(tiny_encoder, tmp_path, params, key, message):
    """The lifecycle checks what it trains, also for a candidate made in code (a search trial)."""
    import tomllib

    from harness.backends.encoder.train import encoder_recipe
    from harness.spec import CandidateSpec
    from harness.training.lifecycle import plan_training

    spec = _project(tmp_path, tiny_encoder, _candidate("encoder-lora", "n_epochs = 1"))
    ctx = _context(spec, tmp_path / "cache")
    suite = ctx.spec.suite("enc")
    bad = CandidateSpec(name="c", kind="encoder-lora", params=tomllib.loads(f"x = {{ {params} }}")["x"])

    def source():
        raise AssertionError("nothing is built for a candidate with bad parameters")

    with pytest.raises(SpecError) as raised:
        plan_training(ctx, suite, bad, encoder_recipe("lora"), source)
    assert str(raised.value).startswith(f"{spec}: suites.enc.candidates.c.params.{key}: ")
    assert message in str(raised.value)


def test_encoder_lora_alpha_is_kept_as_given(tiny_encoder, sentiment_train, tmp_path):
    from harness.backends.encoder.models import init_classifier
    from harness.backends.encoder.train import ENCODER_LORA, lora_config
    from harness.training.recipe import TrainingJob

    assert lora_config(ENCODER_LORA.params({"alpha": 12.5})).lora_alpha == 12.5
    init_classifier(tiny_encoder, LABELS, tmp_path / "init", seed=0)
    train = replace(sentiment_train, examples=sentiment_train.examples[:8])
    job = TrainingJob(tmp_path / "init", train, None, ENCODER_LORA.params({"alpha": 12.5, "r": 4}), 0, tuple(LABELS))
    from peft.tuners.lora import LoraLayer

    model = ENCODER_LORA.prepare(job, tmp_path / "ckpt", False).trainer.model
    layers = [m for m in model.modules() if isinstance(m, LoraLayer)]
    assert layers and {m.scaling["default"] for m in layers} == {12.5 / 4}  # int(12.5) / 4 would be 3.0


@pytest.mark.slow
def test_gradient_checkpointing_trains_the_encoder_adapter_identically(tiny_encoder, sentiment_train, tmp_path):
    """The out-of-memory advice ``gradient_checkpointing = true`` is valid for encoder LoRA."""
    from harness.backends.encoder.models import init_classifier
    from harness.backends.encoder.train import fit_encoder

    init_classifier(tiny_encoder, LABELS, tmp_path / "init", seed=0)
    train = replace(sentiment_train, examples=sentiment_train.examples[:32])
    params = {"n_epochs": 1, "batch_size": 8, "r": 4, "alpha": 8, "logging_steps": 1}
    _, _, plain = fit_encoder("lora", tmp_path / "init", train, None, LABELS, params, tmp_path / "a", seed=0)
    model, _, checkpointed = fit_encoder("lora", tmp_path / "init", train, None, LABELS,
                                         {**params, "gradient_checkpointing": True}, tmp_path / "b", seed=0)
    assert model.base_model.model.is_gradient_checkpointing
    grads = lambda s: [e["grad_norm"] for e in s.log_history if "grad_norm" in e]  # noqa: E731
    assert len(grads(plain)) == 4 and all(g > 0 for g in grads(checkpointed))
    assert grads(checkpointed) == pytest.approx(grads(plain), rel=1e-4)
    assert checkpointed.train_loss == pytest.approx(plain.train_loss, rel=1e-5)


# -- out of memory ------------------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "remedy"), [
    ("encoder-full", 'LoRA instead of full fine-tuning: kind = "encoder-lora"'),
    ("encoder-lora", "a shorter max_length (now 64)"),
])
def test_out_of_memory_in_encoder_training_names_the_remedies(tiny_encoder, tmp_path, monkeypatch, kind, remedy):
    import transformers

    def out_of_memory(self, *args, **kwargs):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 15.7 GiB total capacity)")

    monkeypatch.setattr(transformers.Trainer, "training_step", out_of_memory)
    spec = _project(tmp_path, tiny_encoder, _candidate(kind, "batch_size = 8, gradient_accumulation_steps = 2, "
                                                             "max_length = 64", name="big"))
    with pytest.raises(TrainingError) as raised:
        _build(_context(spec, tmp_path / "cache"), "big")
    text = str(raised.value)
    assert "spec.toml: suites.enc.candidates.big: training ran out of accelerator memory" in text
    assert "batch_size = 4, gradient_accumulation_steps = 4 (same effective batch)" in text
    assert "gradient_checkpointing = true" in text and remedy in text
    assert ("encoder-lora" in text) == (kind == "encoder-full")
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    traceback_file = Path(text.split("full traceback: ")[1].rstrip("]"))
    assert "CUDA out of memory" in traceback_file.read_text(encoding="utf-8")
    stored = {p.name.rsplit("-", 1)[0] for p in (tmp_path / "cache" / "artifacts").iterdir()}
    assert stored == {"encoder-init"}  # the seeded head is cached; nothing trained was half-stored


# -- resume -------------------------------------------------------------------------------------

_SLOW_STEPS = """
import runpy, sys, time
import transformers
_step = transformers.Trainer.training_step
def _slow(self, *args, **kwargs):
    time.sleep(0.15)  # leaves time to kill the run between two checkpoints; changes no number
    return _step(self, *args, **kwargs)
transformers.Trainer.training_step = _slow
sys.argv = ["harness.cli.train", *sys.argv[1:]]
runpy.run_module("harness.cli.train", run_name="__main__")
"""


def _adapter(candidate) -> dict:
    from safetensors.torch import load_file

    return load_file(str(Path(candidate.adapter_dir) / "adapter_model.safetensors"))


@pytest.mark.slow
def test_a_killed_encoder_run_resumes_from_its_checkpoint_and_ends_like_an_uninterrupted_one(tiny_encoder, tmp_path):
    import torch

    from harness.training.resume import last_complete_checkpoint

    spec = _project(tmp_path / "project", tiny_encoder, _candidate("encoder-lora", RESUME_PARAMS))
    cache = tmp_path / "cache"
    command = ["-c", _SLOW_STEPS, "--spec", str(spec), "--suite", "enc", "--candidate", "c",
               "--cache-dir", str(cache)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    with open(tmp_path / "first.log", "wb") as log:
        process = warm_python.Popen(command, stdout=log.fileno(), stderr=log.fileno(), env=env)
        try:
            deadline = time.monotonic() + 300
            # a whole checkpoint (its trainer state written out), not merely its state file begun
            while not any(last_complete_checkpoint(c, remove_partial=False) for c in cache.glob("work/encoder-adapter-*/checkpoints")):
                assert process.poll() is None, (tmp_path / "first.log").read_text(errors="replace")[-3000:]
                assert time.monotonic() < deadline, "no checkpoint appeared"
                time.sleep(0.01)
            os.kill(process.pid, signal.SIGKILL)
        finally:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL
    assert not list(cache.glob("artifacts/encoder-adapter-*"))  # killed before anything was stored
    work = next(cache.glob("work/encoder-adapter-*"))
    step = int(last_complete_checkpoint(work / "checkpoints", remove_partial=False).name.split("-")[1])
    assert 2 <= step < TOTAL_STEPS

    messages: list[str] = []
    ctx = _context(spec, cache, messages)
    resumed = _build(ctx)
    assert any(m.startswith(f"resuming from checkpoint-{step} ") for m in messages), messages
    assert resumed.training.resumed_from_step == step
    assert ctx.events == {"trained": 1, "resumed": 1}
    assert not work.exists()  # the work folder goes once the artifact is stored

    fresh = _build(_context(spec, tmp_path / "uninterrupted"))
    assert fresh.training.resumed_from_step is None
    assert resumed.training.train_loss == pytest.approx(fresh.training.train_loss, abs=1e-5)
    assert resumed.training.eval_loss == pytest.approx(fresh.training.eval_loss, abs=1e-5)
    losses = lambda s: {e["step"]: e["loss"] for e in s.log_history if "loss" in e}  # noqa: E731
    assert losses(resumed.training).keys() == losses(fresh.training).keys()
    assert max(losses(fresh.training)) == TOTAL_STEPS
    assert all(losses(resumed.training)[s] == pytest.approx(v, abs=1e-5) for s, v in losses(fresh.training).items())
    a, b = _adapter(resumed), _adapter(fresh)
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert any(k.endswith("classifier.weight") or "classifier" in k for k in a)  # the head is in the adapter

"""Candidates that run a local causal LM: the base model, LoRA adapters and full fine-tunes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.candidates.context import BuildContext
from harness.candidates.protocol import DecodeParams, Generation, TrainingSummary
from harness.candidates.spec import CandidateSpec, SuiteSpec
from harness.data.records import Message


@dataclass
class LocalCausalLM:
    """A local model directory, optionally with a LoRA adapter, loaded on first use."""

    name: str
    kind: str
    model_dir: Path
    adapter_dir: Path | None
    fingerprint: str
    training: TrainingSummary | None = None
    batch_size: int = 32
    _loaded: Any = field(default=None, repr=False)

    def _model(self):
        if self._loaded is None:
            from harness.runner.generate import load_model

            self._loaded = load_model(self.model_dir, self.adapter_dir)
        return self._loaded

    def generate(self, prompts: Sequence[list[Message]], params: DecodeParams) -> list[Generation]:
        """Batched greedy (or seeded sampled) generation, one reply per prompt."""
        from harness.runner.generate import generate_batch

        model, tokenizer = self._model()
        return generate_batch(model, tokenizer, prompts, params, batch_size=self.batch_size)

    def predict_labels(self, prompts: Sequence[list[Message]], labels: Sequence[str]) -> list[str]:
        """The most likely label per prompt by label log-likelihood."""
        from harness.runner.labels import predict_by_likelihood

        model, tokenizer = self._model()
        return predict_by_likelihood(model, tokenizer, prompts, labels, batch_size=self.batch_size)

    def release(self) -> None:
        """Drop the loaded weights (the next call loads them again)."""
        self._loaded = None


def model_fingerprint(ctx: BuildContext, model_dir: Path, adapter_dir: Path | None) -> str:
    """Identity by content: weights, config, tokenizer and chat template (+ adapter files)."""
    parts = {"model": ctx.fingerprint_dir(model_dir)}
    if adapter_dir is not None:
        parts["adapter"] = ctx.fingerprint_dir(adapter_dir)
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def load_training_splits(suite: SuiteSpec, spec_path: Path):
    """The suite's train and validation splits, validated (a suite never trains on bad data)."""
    from harness.data import load_split
    from harness.errors import SpecError

    if suite.train is None:
        raise SpecError(f"{spec_path}: suite {suite.name!r} has no train split, needed to train a candidate")
    train = load_split(suite.train, name="train")
    validation = load_split(suite.validation, name="validation") if suite.validation else None
    return train, validation


def build_base(ctx: BuildContext, suite: SuiteSpec, spec: CandidateSpec) -> LocalCausalLM:
    """The untouched base model."""
    base_dir = ctx.base_model_dir()
    return LocalCausalLM(spec.name, spec.kind, base_dir, None, model_fingerprint(ctx, base_dir, None),
                         batch_size=ctx.batch_size)


def _train_cached(ctx: BuildContext, suite: SuiteSpec, spec: CandidateSpec, namespace: str, trainer) -> tuple[Path, TrainingSummary]:
    from harness.cache import cache_key, library_versions

    base_dir = ctx.base_model_dir()
    train, validation = load_training_splits(suite, ctx.spec.path)
    seed = int(spec.options.get("seed", ctx.spec.seed))
    key = cache_key(namespace, {
        "base": ctx.fingerprint_dir(base_dir),
        "train": train.fingerprint,
        "validation": validation.fingerprint if validation else None,
        "params": spec.params,
        "seed": seed,
        "versions": library_versions(),
    })

    def build(tmp: Path) -> dict[str, Any]:
        ctx.log(f"training {suite.name}/{spec.name} ({spec.kind}) on {len(train)} examples")
        ctx.count("trained")
        summary = trainer(base_dir, train, validation, spec.params, tmp, seed=seed)
        return {"training": summary.as_dict()}

    entry = ctx.cache.get_or_build(key, build, description=f"{spec.kind} {suite.name}/{spec.name}")
    return entry.path, TrainingSummary(**entry.metadata["training"])


def build_lora(ctx: BuildContext, suite: SuiteSpec, spec: CandidateSpec) -> LocalCausalLM:
    """A LoRA adapter trained with TRL's SFTTrainer on the suite's train split (cached)."""
    from harness.candidates.lora import lora_params, train_lora

    lora_params(spec.params)  # refuse unknown keys before any work
    adapter_dir, summary = _train_cached(ctx, suite, spec, "adapter", train_lora)
    base_dir = ctx.base_model_dir()
    return LocalCausalLM(spec.name, spec.kind, base_dir, adapter_dir,
                         model_fingerprint(ctx, base_dir, adapter_dir), summary, ctx.batch_size)


def build_full(ctx: BuildContext, suite: SuiteSpec, spec: CandidateSpec) -> LocalCausalLM:
    """A full fine-tune with transformers' Trainer, best checkpoint by validation loss (cached)."""
    from harness.candidates.full import full_params, train_full

    full_params(spec.params)
    model_dir, summary = _train_cached(ctx, suite, spec, "model", train_full)
    return LocalCausalLM(spec.name, spec.kind, model_dir, None,
                         model_fingerprint(ctx, model_dir, None), summary, ctx.batch_size)

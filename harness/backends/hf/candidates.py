"""Candidates that run a local causal LM: the base model, LoRA adapters and full fine-tunes.

Trained kinds go through the one training lifecycle (``harness.training.lifecycle``) with their
recipe (``lora.LORA``, ``full.FULL``): parameters checked, data loaded, cache key computed,
trained into the cache with resumable checkpoints, any failure reported as a ``TrainingError``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.backends.hf import inference
from harness.backends.hf.full import FULL
from harness.backends.hf.likelihood import (
    label_lengths,
    label_log_likelihoods,
    predict_by_likelihood,
)
from harness.backends.hf.lora import LORA, load_quantized, quantization_settings
from harness.backends.hf.text_likelihood import text_log_likelihoods
from harness.backends.hf.tokens import context_window, prompt_lengths, token_counts
from harness.context import BuildContext
from harness.data.records import Message
from harness.errors import HarnessError, SpecError
from harness.metrics.calibration import softmax
from harness.protocol import Candidate, DecodeParams, Generation, TrainingSummary
from harness.spec import CandidateSpec, SuiteSpec
from harness.training.lifecycle import (
    TrainingPlan,
    candidate_where,
    load_training_splits,
    train_cached,
)
from harness.training.lifecycle import plan_training as plan_with_recipe

__all__ = ["LocalCausalLM", "build_base", "build_full", "build_lora", "candidate_where", "inference_settings",
           "load_local_model", "load_training_splits", "model_fingerprint", "plan_training", "trained_candidate"]


@dataclass
class LocalCausalLM(Candidate):
    """A local model directory, optionally with a LoRA adapter, loaded on first use."""

    name: str
    kind: str
    model_dir: Path
    adapter_dir: Path | None
    fingerprint: str
    training: TrainingSummary | None = None
    batch_size: int = 32
    quantization: dict[str, Any] | None = None  # bitsandbytes settings the base is loaded with
    torch_threads: int | None = None  # intra-op threads for inference (None: torch's default)
    normalize: str = "none"  # label log-likelihoods compared as they are, per character or per byte
    _loaded: Any = field(default=None, repr=False)

    def _model(self):
        if self._loaded is None:

            try:
                self._loaded = load_local_model(self.model_dir, self.adapter_dir, self.quantization,
                                                torch_threads=self.torch_threads)
            except HarnessError:
                raise
            except Exception as exc:  # wrong base for the adapter, unreadable weights, ...
                adapter = f" with adapter {self.adapter_dir}" if self.adapter_dir else ""
                first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
                raise SpecError(f"candidate {self.name!r}: cannot load model {self.model_dir}{adapter}: "
                                f"{type(exc).__name__}: {first}") from None
        return self._loaded

    def generate(self, prompts: Sequence[list[Message]], params: DecodeParams) -> list[Generation]:
        """Batched greedy (or seeded sampled) generation, one reply per prompt."""

        model, tokenizer = self._model()
        return inference.generate_batch(model, tokenizer, prompts, params, batch_size=self.batch_size)

    def predict_labels(self, prompts: Sequence[list[Message]], labels: Sequence[str]) -> list[str]:
        """The most likely label per prompt by label log-likelihood (normalised as the suite says)."""

        model, tokenizer = self._model()
        return predict_by_likelihood(model, tokenizer, prompts, labels, batch_size=self.batch_size,
                                     normalize=self.normalize)

    def label_probabilities(self, prompts: Sequence[list[Message]], labels: Sequence[str]) -> list[list[float]]:
        """Softmax over the labels of their (normalised) log-likelihoods after each prompt."""

        model, tokenizer = self._model()
        lengths = label_lengths(labels, self.normalize)
        scores = label_log_likelihoods(model, tokenizer, prompts, labels, batch_size=self.batch_size)
        return softmax([[s / n for s, n in zip(row, lengths, strict=True)] for row in scores])

    def text_log_likelihoods(self, texts: Sequence[str]) -> list[tuple[float, int]]:
        """Summed log-probability (nats) and scored tokens of each plain-text document."""

        model, tokenizer = self._model()
        return text_log_likelihoods(model, tokenizer, texts, batch_size=self.batch_size)

    def token_counts(self, prompts: Sequence[list[Message]], replies: Sequence[str]) -> list[tuple[int, int]]:
        """``(prompt, completion)`` tokens per request for label-scored replies (cost reporting)."""

        return token_counts(self._model()[1], prompts, replies)

    def prompt_lengths(self, prompts: Sequence[list[Message]]) -> list[int]:
        """Tokens of each chat prompt as this model's template renders it."""

        return prompt_lengths(self._model()[1], prompts)

    def context_window(self) -> tuple[int | None, str]:
        """The model's context length in tokens and where it comes from."""

        return context_window(self.model_dir, self._model()[1])

    def saved_dirs(self) -> tuple[Path | None, Path | None]:
        """The saved model directory and the adapter directory (None for a full model)."""
        return self.model_dir, self.adapter_dir

    def release(self) -> None:
        """Drop the loaded weights (the next call loads them again)."""
        self._loaded = None


def inference_settings(ctx: BuildContext, suite: SuiteSpec) -> dict[str, Any]:
    """The :class:`LocalCausalLM` fields every local causal LM of ``suite`` takes from the spec."""
    return {"torch_threads": ctx.spec.torch_threads, "normalize": suite.likelihood_normalize}


def load_local_model(model_dir: Path, adapter_dir: Path | None, quantization: dict[str, Any] | None = None, *,
                     torch_threads: int | None = None):
    """``(model, tokenizer)`` for inference; a quantised base (QLoRA) is loaded as it was trained."""

    if quantization is None:
        return inference.load_model(model_dir, adapter_dir, torch_threads=torch_threads)
    inference.set_torch_threads(torch_threads)
    from transformers import AutoTokenizer


    has_tokenizer = adapter_dir is not None and (Path(adapter_dir) / "tokenizer_config.json").exists()
    tokenizer = AutoTokenizer.from_pretrained(str(adapter_dir if has_tokenizer else model_dir))
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = load_quantized(model_dir, quantization)
    if adapter_dir is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter_dir))
    model.eval()
    return model, tokenizer


def model_fingerprint(ctx: BuildContext, model_dir: Path, adapter_dir: Path | None,
                      quantization: dict[str, Any] | None = None) -> str:
    """Identity by content: weights, config, tokenizer and chat template (+ adapter files, and
    the quantisation the base is loaded with, which changes the outputs)."""
    parts: dict[str, Any] = {"model": ctx.fingerprint_dir(model_dir)}
    if adapter_dir is not None:
        parts["adapter"] = ctx.fingerprint_dir(adapter_dir)
    if quantization is not None:
        parts["quantization"] = dict(quantization)
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def build_base(ctx: BuildContext, suite: SuiteSpec, spec: CandidateSpec) -> LocalCausalLM:
    """The untouched base model."""
    base_dir = ctx.base_model_dir()
    return LocalCausalLM(spec.name, spec.kind, base_dir, None, model_fingerprint(ctx, base_dir, None),
                         batch_size=ctx.batch_size, **inference_settings(ctx, suite))


def _recipe(kind: str):
    if kind == "lora":

        return LORA
    if kind == "full":

        return FULL
    raise ValueError(f"no causal-LM training recipe for kind {kind!r}")


def plan_training(ctx: BuildContext, suite: SuiteSpec, spec: CandidateSpec, kind: str) -> TrainingPlan:
    """The training plan of a ``kind`` ("lora" or "full") candidate: parameters checked, data
    loaded, cache key computed over the base model's fingerprint and everything else."""
    def source() -> tuple[Path, dict[str, Any]]:
        base_dir = ctx.base_model_dir()
        return base_dir, {"base": ctx.fingerprint_dir(base_dir)}

    return plan_with_recipe(ctx, suite, spec, _recipe(kind), source)


def trained_candidate(ctx: BuildContext, suite: SuiteSpec, spec: CandidateSpec,
                      kind: str) -> tuple[LocalCausalLM, Any]:
    """A trained ``kind`` ("lora" or "full") candidate and the cache result behind it."""

    plan = plan_training(ctx, suite, spec, kind)
    entry, summary = train_cached(ctx, plan)
    if kind == "full":
        return LocalCausalLM(spec.name, spec.kind, entry.path, None, model_fingerprint(ctx, entry.path, None),
                             summary, ctx.batch_size, **inference_settings(ctx, suite)), entry
    quant = quantization_settings(plan.params)
    return LocalCausalLM(spec.name, spec.kind, plan.model_dir, entry.path,
                         model_fingerprint(ctx, plan.model_dir, entry.path, quant), summary, ctx.batch_size,
                         quant, **inference_settings(ctx, suite)), entry


def build_lora(ctx: BuildContext, suite: SuiteSpec, spec: CandidateSpec) -> LocalCausalLM:
    """A LoRA (or QLoRA) adapter trained with TRL's SFTTrainer on the suite's train split (cached)."""
    return trained_candidate(ctx, suite, spec, "lora")[0]


def build_full(ctx: BuildContext, suite: SuiteSpec, spec: CandidateSpec) -> LocalCausalLM:
    """A full fine-tune with transformers' Trainer, best checkpoint by validation loss (cached)."""
    return trained_candidate(ctx, suite, spec, "full")[0]

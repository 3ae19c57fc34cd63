"""Encoder classification candidates: a sequence-classification head on any encoder checkpoint.

Kinds (declared in the spec like the causal-LM ones)::

    [suites.sentiment_minilm.candidates.base]
    kind = "encoder-base"        # the encoder with a fresh, seeded (untrained) head
    base_model = "minilm"        # or "embedded", a local directory, a hub id ($FT_ENCODER_MODEL overrides)

    [suites.sentiment_minilm.candidates.zeroshot]
    kind = "encoder-zeroshot"    # nearest label description by sentence embedding, no training
    label_descriptions = { positive = "a positive review", negative = "a negative review" }

    [suites.sentiment_minilm.candidates.lora]
    kind = "encoder-lora"        # PEFT LoRA (task_type SEQ_CLS) through transformers' Trainer
    params = { n_epochs = 3, r = 16, alpha = 32, learning_rate = 1e-3 }

    [suites.sentiment_minilm.candidates.full]
    kind = "encoder-full"        # every weight through Trainer, best checkpoint by validation loss

The text classified is each example's last user message; labels are the suite's, saved in the
model config as ``id2label`` / ``label2id``. Trained artifacts are cached by content.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from harness.backends.encoder.inference import head_logits, last_user_text
from harness.backends.encoder.models import (
    EMBEDDED,
    encoder_reference,
    init_classifier,
    load_classifier,
    load_encoder,
    resolve_encoder_path,
)
from harness.backends.encoder.tiny import TinyEncoderConfig, build_tiny_encoder
from harness.backends.encoder.train import encoder_recipe
from harness.backends.encoder.zeroshot import description_table, zero_shot_predict
from harness.cache import cache_key, hash_file, library_versions
from harness.context import BuildContext
from harness.data.corpus import read_corpus
from harness.data.records import Message
from harness.errors import HarnessError, SpecError
from harness.metrics.calibration import softmax
from harness.protocol import Candidate, DecodeParams, Generation, TrainingSummary
from harness.spec import CandidateSpec, SuiteSpec
from harness.training.lifecycle import plan_training, train_cached

DEFAULT_MAX_LENGTH = 128
ZERO_SHOT_MAX_LENGTH = 256  # all-MiniLM-L6-v2's max_seq_length in sentence-transformers
#: the keys each encoder kind's table takes (declared once: the kind registry and the builders read it)
OPTIONS: dict[str, tuple[str, ...]] = {
    "encoder-base": ("base_model", "seed", "max_length"),
    "encoder-lora": ("base_model", "seed"),
    "encoder-full": ("base_model", "seed"),
    "encoder-zeroshot": ("base_model", "max_length", "label_descriptions"),
}


def _digest(parts: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class EncoderClassifier(Candidate):
    """A saved sequence classifier (optionally base + LoRA adapter); labels from its head."""

    name: str
    kind: str
    model_dir: Path
    adapter_dir: Path | None
    fingerprint: str
    labels: tuple[str, ...]
    training: TrainingSummary | None = None
    batch_size: int = 32
    max_length: int = DEFAULT_MAX_LENGTH
    always_predicts_labels: ClassVar[bool] = True
    _loaded: Any = field(default=None, repr=False)
    _last_logits: tuple[tuple[str, ...], Any] | None = field(default=None, repr=False)

    def _model(self):
        if self._loaded is None:

            self._loaded = load_classifier(self.model_dir, self.adapter_dir)
        return self._loaded

    def _logits(self, prompts: Sequence[list[Message]]) -> Any:
        """The head's logits for each prompt's last user message; the last texts' logits are kept,
        so labels and then probabilities of the same prompts (eval, then calibration) run the model once."""
        texts = tuple(last_user_text(p) for p in prompts)
        if self._last_logits is None or self._last_logits[0] != texts:
            model, tokenizer = self._model()
            self._last_logits = (texts, head_logits(model, tokenizer, list(texts), batch_size=self.batch_size,
                                                    max_length=self.max_length))
        return self._last_logits[1]

    def predict_labels(self, prompts: Sequence[list[Message]], labels: Sequence[str]) -> list[str]:
        """The head's highest-scoring label among ``labels`` for each prompt's last user message."""

        unknown = [label for label in labels if label not in self.labels]
        if unknown or not labels:
            raise HarnessError(f"candidate {self.name!r}: its classification head knows the labels "
                               f"{list(self.labels)}, asked for {list(labels)}")
        columns = [self.labels.index(label) for label in labels]
        logits = self._logits(prompts)
        return [labels[int(i)] for i in logits[:, columns].argmax(dim=1)] if len(prompts) else []

    def label_probabilities(self, prompts: Sequence[list[Message]], labels: Sequence[str]) -> list[list[float]]:
        """Softmax of the head's logits over ``labels`` for each prompt's last user message."""

        unknown = [label for label in labels if label not in self.labels]
        if unknown or not labels:
            raise HarnessError(f"candidate {self.name!r}: its classification head knows the labels "
                               f"{list(self.labels)}, asked for {list(labels)}")
        if not prompts:
            return []
        columns = [self.labels.index(label) for label in labels]
        return softmax(self._logits(prompts)[:, columns].tolist())

    def generate(self, prompts: Sequence[list[Message]], params: DecodeParams) -> list[Generation]:
        """An encoder writes no text: each 'reply' is the label its head predicts."""
        began = time.perf_counter()
        predicted = self.predict_labels(prompts, self.labels)
        per = (time.perf_counter() - began) / max(1, len(prompts))
        return [Generation(text=label, latency_s=per) for label in predicted]

    def saved_dirs(self) -> tuple[Path | None, Path | None]:
        """The saved classifier directory and its adapter directory (None without one)."""
        return self.model_dir, self.adapter_dir

    def release(self) -> None:
        """Drop the loaded weights and the kept logits (the next call loads them again)."""
        self._loaded = None
        self._last_logits = None


@dataclass
class ZeroShotEncoder(Candidate):
    """A bare encoder that labels a text by its nearest label description (no training)."""

    name: str
    kind: str
    model_dir: Path
    fingerprint: str
    descriptions: dict[str, tuple[str, ...]]
    training: TrainingSummary | None = None
    batch_size: int = 32
    max_length: int = ZERO_SHOT_MAX_LENGTH
    always_predicts_labels: ClassVar[bool] = True
    _loaded: Any = field(default=None, repr=False)

    def _model(self):
        if self._loaded is None:

            self._loaded = load_encoder(self.model_dir)
        return self._loaded

    def predict_labels(self, prompts: Sequence[list[Message]], labels: Sequence[str]) -> list[str]:
        """The label whose description is most similar to each prompt's last user message."""

        model, tokenizer = self._model()
        return zero_shot_predict(model, tokenizer, [last_user_text(p) for p in prompts], self.descriptions,
                                 list(labels), batch_size=self.batch_size, max_length=self.max_length)

    def generate(self, prompts: Sequence[list[Message]], params: DecodeParams) -> list[Generation]:
        """Each 'reply' is the predicted label (over every described label)."""
        began = time.perf_counter()
        predicted = self.predict_labels(prompts, list(self.descriptions))
        per = (time.perf_counter() - began) / max(1, len(prompts))
        return [Generation(text=label, latency_s=per) for label in predicted]

    def saved_dirs(self) -> tuple[Path | None, Path | None]:
        """The sentence encoder's directory (nothing is trained, so no adapter)."""
        return self.model_dir, None

    def release(self) -> None:
        """Drop the loaded weights (the next call loads them again)."""
        self._loaded = None


# -- building --------------------------------------------------------------------------------
def _where(ctx: BuildContext, suite: SuiteSpec, spec: CandidateSpec) -> str:
    return f"{ctx.spec.path}: suites.{suite.name}.candidates.{spec.name}"


def _check(ctx: BuildContext, suite: SuiteSpec, spec: CandidateSpec) -> None:
    where = _where(ctx, suite, spec)
    if suite.task != "classification":
        raise SpecError(f"{where}.kind: {spec.kind!r} needs a classification suite (task is {suite.task!r})")
    unknown = sorted(set(spec.options) - set(OPTIONS[spec.kind]))
    if unknown:
        raise SpecError(f"{where}: unknown option {unknown[0]!r} for kind {spec.kind!r} "
                        f"(allowed: {', '.join(sorted(OPTIONS[spec.kind]))})")
    if "max_length" in spec.options and (not isinstance(spec.options["max_length"], int)
                                         or spec.options["max_length"] < 2):
        raise SpecError(f"{where}.max_length: expected an integer of at least 2, got {spec.options['max_length']!r}")
    if spec.params and spec.kind in ("encoder-base", "encoder-zeroshot"):
        raise SpecError(f"{where}.params: kind {spec.kind!r} trains nothing and takes no params")


def encoder_base_dir(ctx: BuildContext, spec: CandidateSpec) -> Path:
    """Local directory of the candidate's encoder base (the embedded tiny BERT built and cached once)."""

    ref = encoder_reference(spec.options, ctx.options.encoder_model)
    return _embedded_encoder(ctx) if ref == EMBEDDED else resolve_encoder_path(ref)


def _embedded_encoder(ctx: BuildContext) -> Path:

    corpus = ctx.spec.corpus
    if corpus is None or not corpus.exists():
        raise SpecError(f"{ctx.spec.path}: the embedded encoder needs harness.corpus (a text file); got {corpus}")
    config = TinyEncoderConfig(seed=ctx.spec.seed)
    key = cache_key("encoder-embedded", {"config": config.as_dict(), "corpus": hash_file(corpus),
                                         "versions": library_versions()})

    def build(tmp: Path) -> dict[str, Any]:
        ctx.log("building the embedded encoder (tiny BERT, WordPiece trained on the fixture corpus)")
        build_tiny_encoder(tmp, read_corpus(corpus), config)
        return {"config": config.as_dict()}

    return ctx.cache.get_or_build(key, build, description="embedded tiny encoder").path


def _seed(ctx: BuildContext, spec: CandidateSpec) -> int:
    return int(spec.options.get("seed", ctx.spec.seed))


def classifier_init_dir(ctx: BuildContext, suite: SuiteSpec, spec: CandidateSpec) -> tuple[Path, Path]:
    """``(base_dir, init_dir)``: the encoder base and its cached copy with a seeded, untrained head."""

    base_dir = encoder_base_dir(ctx, spec)
    seed = _seed(ctx, spec)
    key = cache_key("encoder-init", {"base": ctx.fingerprint_dir(base_dir), "labels": list(suite.labels),
                                     "seed": seed, "versions": library_versions()})

    def build(tmp: Path) -> dict[str, Any]:
        ctx.log(f"adding a seeded {len(suite.labels)}-label head to encoder {base_dir}")
        return init_classifier(base_dir, suite.labels, tmp, seed=seed)

    entry = ctx.cache.get_or_build(key, build, description=f"encoder head init {suite.name} ({base_dir.name})")
    return base_dir, entry.path


def _fingerprint(ctx: BuildContext, model_dir: Path, adapter_dir: Path | None, max_length: int) -> str:
    parts: dict[str, Any] = {"classifier": ctx.fingerprint_dir(model_dir), "max_length": max_length}
    if adapter_dir is not None:
        parts["adapter"] = ctx.fingerprint_dir(adapter_dir)
    return _digest(parts)


def build_encoder_base(ctx: BuildContext, suite: SuiteSpec, spec: CandidateSpec) -> EncoderClassifier:
    """The encoder with a seeded, untrained classification head (about chance level)."""
    _check(ctx, suite, spec)
    _, init_dir = classifier_init_dir(ctx, suite, spec)
    max_length = int(spec.options.get("max_length", DEFAULT_MAX_LENGTH))
    return EncoderClassifier(spec.name, spec.kind, init_dir, None, _fingerprint(ctx, init_dir, None, max_length),
                             tuple(suite.labels), batch_size=ctx.batch_size, max_length=max_length)


def _train_cached(ctx: BuildContext, suite: SuiteSpec, spec: CandidateSpec, mode: str):
    """``(init_dir, artifact_dir, summary, max_length)`` of a trained encoder, through the one
    training lifecycle (checked parameters, resumable checkpoints, out-of-memory advice)."""

    def source() -> tuple[Path, dict[str, Any]]:
        base_dir, init_dir = classifier_init_dir(ctx, suite, spec)
        return init_dir, {"base": ctx.fingerprint_dir(base_dir), "init": ctx.fingerprint_dir(init_dir),
                          "labels": list(suite.labels), "label_aliases": dict(suite.label_aliases)}

    plan = plan_training(ctx, suite, spec, encoder_recipe(mode), source)
    entry, summary = train_cached(ctx, plan)
    return plan.model_dir, entry.path, summary, int(plan.params["max_length"])


def build_encoder_lora(ctx: BuildContext, suite: SuiteSpec, spec: CandidateSpec) -> EncoderClassifier:
    """A SEQ_CLS LoRA adapter (head included) trained with Trainer on the suite's train split (cached)."""
    _check(ctx, suite, spec)
    init_dir, adapter_dir, summary, max_length = _train_cached(ctx, suite, spec, "lora")
    return EncoderClassifier(spec.name, spec.kind, init_dir, adapter_dir,
                             _fingerprint(ctx, init_dir, adapter_dir, max_length), tuple(suite.labels),
                             summary, ctx.batch_size, max_length)


def build_encoder_full(ctx: BuildContext, suite: SuiteSpec, spec: CandidateSpec) -> EncoderClassifier:
    """Every weight fine-tuned with Trainer, best checkpoint by validation loss (cached)."""
    _check(ctx, suite, spec)
    _, model_dir, summary, max_length = _train_cached(ctx, suite, spec, "full")
    return EncoderClassifier(spec.name, spec.kind, model_dir, None, _fingerprint(ctx, model_dir, None, max_length),
                             tuple(suite.labels), summary, ctx.batch_size, max_length)


def build_encoder_zeroshot(ctx: BuildContext, suite: SuiteSpec, spec: CandidateSpec) -> ZeroShotEncoder:
    """Nearest label description by mean-pooled, normalised sentence embeddings (no training)."""

    _check(ctx, suite, spec)
    where = _where(ctx, suite, spec)
    descriptions = description_table(suite.labels, spec.options.get("label_descriptions"),
                                     f"{where}.label_descriptions")
    base_dir = encoder_base_dir(ctx, spec)
    max_length = int(spec.options.get("max_length", ZERO_SHOT_MAX_LENGTH))
    fingerprint = _digest({"encoder": ctx.fingerprint_dir(base_dir), "method": "mean-pool-cosine",
                           "descriptions": {k: list(v) for k, v in descriptions.items()},
                           "max_length": max_length})
    return ZeroShotEncoder(spec.name, spec.kind, base_dir, fingerprint, descriptions,
                           batch_size=ctx.batch_size, max_length=max_length)

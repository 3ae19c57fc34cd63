"""Candidates that run a local causal LM: the base model, LoRA adapters and full fine-tunes.

Trained kinds are planned (parameters checked, data loaded, cache key computed), trained into
the cache with resumable checkpoints, and any failure is reported as a ``TrainingError``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.context import BuildContext
from harness.data.records import Message, Split
from harness.protocol import DecodeParams, Generation, TrainingSummary
from harness.spec import CandidateSpec, SuiteSpec


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
    quantization: dict[str, Any] | None = None  # bitsandbytes settings the base is loaded with
    _loaded: Any = field(default=None, repr=False)

    def _model(self):
        if self._loaded is None:
            from harness.errors import HarnessError, SpecError

            try:
                self._loaded = load_local_model(self.model_dir, self.adapter_dir, self.quantization)
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
        from harness.backends.hf.inference import generate_batch

        model, tokenizer = self._model()
        return generate_batch(model, tokenizer, prompts, params, batch_size=self.batch_size)

    def predict_labels(self, prompts: Sequence[list[Message]], labels: Sequence[str]) -> list[str]:
        """The most likely label per prompt by label log-likelihood."""
        from harness.backends.hf.likelihood import predict_by_likelihood

        model, tokenizer = self._model()
        return predict_by_likelihood(model, tokenizer, prompts, labels, batch_size=self.batch_size)

    def release(self) -> None:
        """Drop the loaded weights (the next call loads them again)."""
        self._loaded = None


def load_local_model(model_dir: Path, adapter_dir: Path | None, quantization: dict[str, Any] | None = None):
    """``(model, tokenizer)`` for inference; a quantised base (QLoRA) is loaded as it was trained."""
    if quantization is None:
        from harness.backends.hf.inference import load_model

        return load_model(model_dir, adapter_dir)
    from transformers import AutoTokenizer

    from harness.backends.hf.lora import load_quantized

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


@dataclass
class TrainingPlan:
    """Everything that determines one trained candidate, and the cache key it is stored under."""

    suite: SuiteSpec
    spec: CandidateSpec
    kind: str  # "lora" or "full"
    namespace: str
    key: str
    base_dir: Path
    train: Split
    validation: Split | None
    params: dict[str, Any]  # effective parameters (defaults filled in)
    seed: int
    trainer: Callable[..., TrainingSummary]
    where: str

    def run(self, out_dir: Path, *, checkpoint_dir: Path | None = None,
            log: Callable[[str], None] | None = None) -> TrainingSummary:
        """Train into ``out_dir`` (checkpointing into ``checkpoint_dir`` and resuming from it)."""
        return self.trainer(self.base_dir, self.train, self.validation, self.params, out_dir,
                            seed=self.seed, checkpoint_dir=checkpoint_dir, log=log)


_TRAINED_KINDS = {
    "lora": ("adapter", "harness.backends.hf.lora", "lora_params", "train_lora"),
    "full": ("model", "harness.backends.hf.full", "full_params", "train_full"),
}


def candidate_where(ctx: BuildContext, suite: SuiteSpec, spec: CandidateSpec) -> str:
    """``<spec file>: suites.<suite>.candidates.<name>``, the prefix of every error about it."""
    return f"{ctx.spec.path}: suites.{suite.name}.candidates.{spec.name}"


def plan_training(ctx: BuildContext, suite: SuiteSpec, spec: CandidateSpec, kind: str) -> TrainingPlan:
    """Check the parameters, load the data and compute the cache key of a ``kind`` candidate.

    The key hashes the effective parameters (defaults filled in), so a candidate that spells out
    a default shares its artifact with one that leaves it out, and search trials equal to a
    declared candidate reuse it.
    """
    import importlib

    from harness.cache import cache_key, library_versions
    from harness.errors import SpecError
    from harness.training.lifecycle import cache_params, schedule_arguments

    namespace, module_name, params_fn, train_fn = _TRAINED_KINDS[kind]
    module = importlib.import_module(module_name)
    where = candidate_where(ctx, suite, spec)
    train, validation = load_training_splits(suite, ctx.spec.path)
    try:
        params = getattr(module, params_fn)(spec.params)
        schedule_arguments(params, has_eval=validation is not None, checkpointing=True)
    except SpecError as exc:
        raise SpecError(f"{where}.params: {exc}") from None
    base_dir = ctx.base_model_dir()
    seed = int(spec.options.get("seed", ctx.spec.seed))
    key = cache_key(namespace, {
        "base": ctx.fingerprint_dir(base_dir),
        "train": train.fingerprint,
        "validation": validation.fingerprint if validation else None,
        "params": cache_params(params),
        "seed": seed,
        "versions": library_versions(),
    })
    return TrainingPlan(suite, spec, kind, namespace, key, base_dir, train, validation, params, seed,
                        getattr(module, train_fn), where)


def _traceback_file(work: Path | None, key: str, exc: BaseException) -> Path | None:
    import tempfile
    import traceback

    target = (work / "traceback.txt") if work is not None else Path(tempfile.gettempdir()) / f"ft-harness-{key}.txt"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("".join(traceback.format_exception(exc)), encoding="utf-8")
    except OSError:
        return None
    return target


def train_cached(ctx: BuildContext, plan: TrainingPlan) -> tuple[Any, TrainingSummary]:
    """The trained artifact of ``plan`` from the cache, training it on a miss.

    Training checkpoints into ``<cache root>/work/<key>/`` and resumes from there after an
    interruption; the folder goes once the artifact is stored. Any failure becomes a
    ``TrainingError`` that names the candidate and the cause (out of memory: with remedies).
    Returns ``(cache_result, summary)``.
    """
    from harness.errors import HarnessError, SpecError
    from harness.training.lifecycle import summary_from_dict, training_failure
    from harness.training.resume import checkpoints_dir, remove_work_dir, work_dir

    resumable = bool(ctx.cache.enabled and ctx.options.get("resume", True))
    work = work_dir(Path(ctx.options.get("cache_root") or ctx.cache.root), plan.key) if resumable else None
    label = f"{plan.suite.name}/{plan.spec.name}"

    def build(tmp: Path) -> dict[str, Any]:
        ctx.log(f"training {label} ({plan.kind}) on {len(plan.train)} examples")
        ctx.count("trained")
        summary = plan.run(tmp, checkpoint_dir=checkpoints_dir(work) if work else None, log=ctx.log)
        if getattr(summary, "resumed_from_step", None):
            ctx.count("resumed")
        for note in summary.notes:
            if note.startswith(("overfitting", "early stopping")):
                ctx.log(f"{label}: {note}")
        return {"training": summary.as_dict()}

    try:
        entry = ctx.cache.get_or_build(plan.key, build, description=f"{plan.kind} {label}")
    except SpecError as exc:
        raise SpecError(f"{plan.where}: {exc}") from None
    except HarnessError:
        raise
    except Exception as exc:  # anything from torch / transformers / peft / trl
        failure = training_failure(exc, where=plan.where, kind=plan.kind, params=plan.params,
                                   traceback_file=_traceback_file(work, plan.key, exc))
        raise failure from None
    if work is not None:
        remove_work_dir(work)
    return entry, summary_from_dict(entry.metadata["training"])


def trained_candidate(ctx: BuildContext, suite: SuiteSpec, spec: CandidateSpec,
                      kind: str) -> tuple[LocalCausalLM, Any]:
    """A trained ``kind`` ("lora" or "full") candidate and the cache result behind it."""
    from harness.backends.hf.lora import quantization_settings

    plan = plan_training(ctx, suite, spec, kind)
    entry, summary = train_cached(ctx, plan)
    if kind == "full":
        return LocalCausalLM(spec.name, spec.kind, entry.path, None, model_fingerprint(ctx, entry.path, None),
                             summary, ctx.batch_size), entry
    quant = quantization_settings(plan.params)
    return LocalCausalLM(spec.name, spec.kind, plan.base_dir, entry.path,
                         model_fingerprint(ctx, plan.base_dir, entry.path, quant), summary, ctx.batch_size,
                         quant), entry


def build_lora(ctx: BuildContext, suite: SuiteSpec, spec: CandidateSpec) -> LocalCausalLM:
    """A LoRA (or QLoRA) adapter trained with TRL's SFTTrainer on the suite's train split (cached)."""
    return trained_candidate(ctx, suite, spec, "lora")[0]


def build_full(ctx: BuildContext, suite: SuiteSpec, spec: CandidateSpec) -> LocalCausalLM:
    """A full fine-tune with transformers' Trainer, best checkpoint by validation loss (cached)."""
    return trained_candidate(ctx, suite, spec, "full")[0]

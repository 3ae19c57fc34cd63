"""Existing work as candidates, no training: a LoRA adapter directory (``kind = "adapter"``), a
saved or merged model directory or a hub id (``kind = "model"``); and merging an adapter into
its base for deployment (``ft-harness merge``).

    [suites.sentiment.candidates.shipped]
    kind = "adapter"
    path = "../adapters/sentiment-v3"   # relative to the spec file
    base = "embedded"                   # optional: default is the adapter's own base, else the session's

    [suites.sentiment.candidates.merged]
    kind = "model"
    path = "../models/sentiment-v3-merged"   # or a hub id where a network exists
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.backends.hf.candidates import (
    LocalCausalLM,
    candidate_where,
    inference_settings,
    model_fingerprint,
)
from harness.backends.hf.inference import render_prompts
from harness.backends.hf.lora import quantization_settings
from harness.context import local_model_dir
from harness.errors import HarnessError, SpecError

#: the keys of an adapter / model table besides those every local kind takes (declared once: the
#: kind registry and the builders read these)
ADAPTER_OPTIONS = ("path", "base", "load_in_8bit", "load_in_4bit")
MODEL_OPTIONS = ("path",)
PROBE_PROMPTS = (
    "Classify the sentiment of: the battery life is wonderful.",
    "Write one sentence about a lamp.",
    "Is this review positive or negative? The strap broke after a day.",
    "Describe a kettle in five words.",
)


def resolve_model_ref(ref: str, base: Path, where: str) -> Path:
    """A local model directory for ``ref`` (a path relative to ``base``, or a hub id)."""
    return local_model_dir(ref, where, base=base)


def adapter_config(adapter_dir: Path, where: str) -> dict[str, Any]:
    """The adapter's ``adapter_config.json`` (checked to exist and parse)."""
    path = Path(adapter_dir) / "adapter_config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecError(f"{where}: {adapter_dir} is not a PEFT adapter directory (no adapter_config.json)") from None
    except (OSError, ValueError) as exc:
        raise SpecError(f"{where}: {path} is unreadable: {exc}") from None
    if not isinstance(config, dict):
        raise SpecError(f"{where}: {path} is not a JSON object")
    return config


def adapter_base(adapter_dir: Path, explicit: str | None, spec_dir: Path, where: str) -> Path | None:
    """The base an adapter applies to: ``explicit`` if given, else the adapter's own
    ``base_model_name_or_path`` (a directory, or a hub id that can be fetched); None when the
    adapter names no base or names one that is not available here."""
    if explicit:
        return resolve_model_ref(explicit, spec_dir, f"{where}.base")
    recorded = adapter_config(adapter_dir, where).get("base_model_name_or_path")
    if not recorded:
        return None
    if (Path(recorded) / "config.json").exists():
        return Path(recorded).resolve()
    try:
        return resolve_model_ref(recorded, spec_dir, where)
    except SpecError:
        return None


def _spec_dir(ctx) -> Path:
    return Path(ctx.spec.path).resolve().parent


def _check_options(spec, allowed: tuple[str, ...], where: str) -> str:
    unknown = sorted(set(spec.options) - set(allowed) - {"seed", "scoring", "engine", "vllm"})  # engine: wrapped
    if unknown or spec.params:
        key = unknown[0] if unknown else "params"
        raise SpecError(f"{where}: unknown key {key!r} for kind {spec.kind!r} (allowed: {', '.join(sorted(allowed))})")
    path = spec.options.get("path")
    if not isinstance(path, str) or not path:
        raise SpecError(f"{where}.path: expected a directory path or hub id, got {path!r}")
    return path


def build_adapter(ctx, suite, spec):
    """An existing PEFT adapter over its base, loaded with ``PeftModel.from_pretrained``."""

    where = candidate_where(ctx, suite, spec)
    ref = _check_options(spec, ADAPTER_OPTIONS, where)
    adapter_dir = Path(ref).expanduser()
    adapter_dir = (adapter_dir if adapter_dir.is_absolute() else _spec_dir(ctx) / adapter_dir).resolve()
    adapter_config(adapter_dir, f"{where}.path")
    base = spec.options.get("base")
    base_dir = None if base == "embedded" else adapter_base(adapter_dir, base, _spec_dir(ctx), where)
    if base_dir is None:
        if base != "embedded":
            ctx.log(f"{suite.name}/{spec.name}: the adapter names no base available here; using the "
                    "session's base model (set `base = ...` to choose)")
        base_dir = ctx.base_model_dir()
    quantization = None
    if spec.options.get("load_in_4bit") or spec.options.get("load_in_8bit"):

        quantization = quantization_settings({"load_in_4bit": bool(spec.options.get("load_in_4bit")),
                                              "load_in_8bit": bool(spec.options.get("load_in_8bit"))})
    ctx.count("loaded")
    return LocalCausalLM(spec.name, spec.kind, base_dir, adapter_dir,
                         model_fingerprint(ctx, base_dir, adapter_dir, quantization),
                         batch_size=ctx.batch_size, quantization=quantization, **inference_settings(ctx, suite))


def build_model(ctx, suite, spec):
    """A saved (e.g. merged) model directory or hub id, evaluated as it is."""

    where = candidate_where(ctx, suite, spec)
    ref = _check_options(spec, MODEL_OPTIONS, where)
    model_dir = resolve_model_ref(ref, _spec_dir(ctx), f"{where}.path")
    ctx.count("loaded")
    return LocalCausalLM(spec.name, spec.kind, model_dir, None, model_fingerprint(ctx, model_dir, None),
                         batch_size=ctx.batch_size, **inference_settings(ctx, suite))


@dataclass
class MergeReport:
    """What ``merge_adapter`` wrote and how closely the merged model matches the adapter."""

    out_dir: Path
    base_dir: Path
    probes: int
    same_predictions: bool
    max_abs_logit_diff: float

    def summary(self) -> str:
        """One line for the command's output."""
        verdict = "identical" if self.same_predictions else "DIFFERENT"
        return (f"merged into {self.out_dir} (base {self.base_dir}); next-token predictions on "
                f"{self.probes} probe prompts {verdict}, max |logit difference| {self.max_abs_logit_diff:.2e}")


def _probe_batch(tokenizer, prompts: Sequence[list[dict[str, str]]]):
    import torch

    if getattr(tokenizer, "chat_template", None):

        rows = render_prompts(tokenizer, prompts)
    else:
        rows = [tokenizer(m[-1]["content"])["input_ids"] for m in prompts]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):  # right padding: positions line up across models
        ids[i, :len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, :len(row)] = 1
    return ids, mask


def _logits(model, ids, mask):
    import torch

    with torch.inference_mode():
        return model(input_ids=ids, attention_mask=mask).logits.float()


def merge_adapter(adapter_dir: Path, out_dir: Path, *, base: str | None = None,
                  probes: Sequence[list[dict[str, str]]] | None = None) -> MergeReport:
    """Merge a LoRA adapter into its base (``merge_and_unload``), save model + tokenizer into
    ``out_dir``, reload the merged model and compare its predictions with the adapter's."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    adapter_dir = Path(adapter_dir).resolve()
    where = f"adapter {adapter_dir}"
    config = adapter_config(adapter_dir, where)
    if config.get("peft_type") not in (None, "LORA"):
        raise HarnessError(f"{where}: only LoRA adapters can be merged (peft_type {config.get('peft_type')!r})")
    base_dir = adapter_base(adapter_dir, base, Path.cwd(), where)
    if base_dir is None:
        raise HarnessError(f"{where}: its base model is not available here; pass the base model "
                           "directory with --base")
    has_tokenizer = (adapter_dir / "tokenizer_config.json").exists()
    tokenizer = AutoTokenizer.from_pretrained(str(adapter_dir if has_tokenizer else base_dir))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    try:
        base_model = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32)
        model = PeftModel.from_pretrained(base_model, str(adapter_dir))
    except Exception as exc:
        raise HarnessError(f"{where}: cannot load it over base {base_dir}: {type(exc).__name__}: "
                           f"{str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ''}") from None
    model.eval()
    prompts = list(probes) if probes else [[{"role": "user", "content": text}] for text in PROBE_PROMPTS]
    ids, mask = _probe_batch(tokenizer, prompts)
    before = _logits(model, ids, mask)
    merged = model.merge_and_unload()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    reloaded = AutoModelForCausalLM.from_pretrained(str(out_dir), dtype=torch.float32)
    reloaded.eval()
    after = _logits(reloaded, ids, mask)
    valid = mask.bool()
    same = bool(torch.equal(before.argmax(-1)[valid], after.argmax(-1)[valid]))
    diff = float((before - after).abs()[valid].max())
    return MergeReport(out_dir=out_dir, base_dir=base_dir, probes=len(prompts), same_predictions=same,
                       max_abs_logit_diff=diff)

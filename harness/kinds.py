"""Candidate kinds: each kind names the function that builds it (imported only when used)."""

from __future__ import annotations

import importlib

from harness.context import BuildContext
from harness.errors import SpecError
from harness.protocol import Candidate
from harness.spec import CandidateSpec, SuiteSpec

KINDS: dict[str, str] = {
    "base": "harness.backends.hf.candidates:build_base",
    "lora": "harness.backends.hf.candidates:build_lora",
    "full": "harness.backends.hf.candidates:build_full",
    "search": "harness.tuning.search:build_search",
    "adapter": "harness.backends.hf.loaded:build_adapter",
    "model": "harness.backends.hf.loaded:build_model",
    "openai": "harness.backends.openai.finetune:build",
    "endpoint": "harness.backends.openai.endpoint:build",
    "encoder-base": "harness.backends.encoder.candidates:build_encoder_base",
    "encoder-lora": "harness.backends.encoder.candidates:build_encoder_lora",
    "encoder-full": "harness.backends.encoder.candidates:build_encoder_full",
    "encoder-zeroshot": "harness.backends.encoder.candidates:build_encoder_zeroshot",
}


def build_candidate(ctx: BuildContext, suite: SuiteSpec, spec: CandidateSpec) -> Candidate:
    """Build (train or load) the candidate ``spec`` of ``suite``."""
    target = KINDS.get(spec.kind)
    if target is None:
        raise SpecError(f"{ctx.spec.path}: suites.{suite.name}.candidates.{spec.name}.kind: unknown kind "
                        f"{spec.kind!r} (known: {', '.join(sorted(KINDS))})")
    module_name, func_name = target.split(":")
    builder = getattr(importlib.import_module(module_name), func_name)
    return builder(ctx, suite, spec)

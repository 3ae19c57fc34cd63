"""Candidate kinds: each kind names the function that builds it (imported only when used)."""

from __future__ import annotations

import importlib

from harness.candidates.context import BuildContext
from harness.candidates.protocol import Candidate
from harness.candidates.spec import CandidateSpec, SuiteSpec
from harness.errors import SpecError

KINDS: dict[str, str] = {
    "base": "harness.candidates.local:build_base",
    "lora": "harness.candidates.local:build_lora",
    "full": "harness.candidates.local:build_full",
    "search": "harness.candidates.search:build_search",
    "adapter": "harness.candidates.loaded:build_adapter",
    "model": "harness.candidates.loaded:build_model",
    "openai": "harness.candidates.openai_ft:build",
    "endpoint": "harness.candidates.endpoint:build",
    "encoder-base": "harness.candidates.encoder:build_encoder_base",
    "encoder-lora": "harness.candidates.encoder:build_encoder_lora",
    "encoder-full": "harness.candidates.encoder:build_encoder_full",
    "encoder-zeroshot": "harness.candidates.encoder:build_encoder_zeroshot",
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

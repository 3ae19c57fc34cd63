"""Candidate kinds: each kind names the function that builds it (imported only when used)."""

from __future__ import annotations

import importlib

from harness.context import BuildContext
from harness.errors import SpecError
from harness.protocol import Candidate
from harness.spec import KINDS as KIND_FACTS
from harness.spec import CandidateSpec, SuiteSpec

#: kind -> "module:function" that builds it; the kinds and the keys each takes are declared
#: (and checked when the spec loads) in :data:`harness.spec.KINDS`.
KINDS: dict[str, str] = {name: facts.builder for name, facts in KIND_FACTS.items()}
#: wraps a built local candidate with ``engine = "vllm"`` (imported only when a spec asks for it)
VLLM_ENGINE = "harness.backends.vllm.engine:serve_with_vllm"


def build_candidate(ctx: BuildContext, suite: SuiteSpec, spec: CandidateSpec) -> Candidate:
    """Build (train or load) the candidate ``spec`` of ``suite``."""
    target = KINDS.get(spec.kind)
    if target is None:
        raise SpecError(f"{ctx.spec.path}: suites.{suite.name}.candidates.{spec.name}.kind: unknown kind "
                        f"{spec.kind!r} (known: {', '.join(sorted(KINDS))})")
    module_name, func_name = target.split(":")
    builder = getattr(importlib.import_module(module_name), func_name)
    built = builder(ctx, suite, spec)
    if spec.options.get("engine") == "vllm":  # outputs through vLLM instead of transformers
        module_name, func_name = VLLM_ENGINE.split(":")
        return getattr(importlib.import_module(module_name), func_name)(ctx, suite, spec, built)
    return built

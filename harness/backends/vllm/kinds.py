"""The vLLM engine's part in the kind registry: the ``engine`` and ``vllm`` option checks and the
build wrapper that serves a local causal LM through vLLM when its table says ``engine = "vllm"``."""

from __future__ import annotations

from typing import Any

from harness.backends.vllm.engine import serve_with_vllm
from harness.backends.vllm.settings import check_engine, check_vllm_table
from harness.spec.registry import register_build_wrapper, register_option_check


def serve_if_asked(ctx: Any, suite: Any, spec: Any, built: Any) -> Any:
    """``built`` served through vLLM when its table says ``engine = "vllm"``, else ``built`` itself."""
    if spec.options.get("engine") == "vllm":
        return serve_with_vllm(ctx, suite, spec, built)
    return built


def register() -> None:
    """Register this family's kinds (called by :mod:`harness.kinds`, the one discovery point)."""
    register_option_check("engine", check_engine)
    register_option_check("vllm", check_vllm_table)
    register_build_wrapper(serve_if_asked)

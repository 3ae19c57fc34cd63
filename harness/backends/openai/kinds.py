"""The OpenAI family's candidate kinds (a fine-tuning job, a deployed endpoint), registered with the
spec's kind registry next to their builders."""

from __future__ import annotations

from harness.backends.openai import endpoint
from harness.backends.openai.candidates import OPTIONS, PARAMS, build_openai, openai_params
from harness.spec.registry import KindFacts, register_kind

KINDS = (
    KindFacts("openai", build_openai, OPTIONS, PARAMS, openai_params, "an OpenAI fine-tuning job",
              required=("model",)),
    KindFacts("endpoint", endpoint.build, endpoint.OPTIONS, summary="an OpenAI-compatible endpoint",
              required=("model",)),
)

def register() -> None:
    """Register this family's kinds (called by :mod:`harness.kinds`, the one discovery point)."""
    register_kind(*KINDS)

"""The encoder family's candidate kinds, registered with the spec's kind registry next to their builders."""

from __future__ import annotations

from harness.backends.encoder.candidates import (
    OPTIONS,
    build_encoder_base,
    build_encoder_full,
    build_encoder_lora,
    build_encoder_zeroshot,
)
from harness.backends.encoder.train import (
    ENCODER_FULL,
    ENCODER_FULL_DEFAULTS,
    ENCODER_LORA,
    ENCODER_LORA_DEFAULTS,
)
from harness.spec.registry import KindFacts, register_kind

KINDS = (
    KindFacts("encoder-base", build_encoder_base, OPTIONS["encoder-base"],
              summary="an encoder with a seeded, untrained head"),
    KindFacts("encoder-lora", build_encoder_lora, OPTIONS["encoder-lora"], ENCODER_LORA_DEFAULTS,
              ENCODER_LORA.params, "an encoder LoRA adapter trained here"),
    KindFacts("encoder-full", build_encoder_full, OPTIONS["encoder-full"], ENCODER_FULL_DEFAULTS,
              ENCODER_FULL.params, "an encoder fine-tuned here"),
    KindFacts("encoder-zeroshot", build_encoder_zeroshot, OPTIONS["encoder-zeroshot"],
              summary="nearest label description by sentence embedding"),
)

def register() -> None:
    """Register this family's kinds (called by :mod:`harness.kinds`, the one discovery point)."""
    register_kind(*KINDS)

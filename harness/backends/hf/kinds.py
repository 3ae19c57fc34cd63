"""The causal-LM family's candidate kinds (base, lora, full, adapter, model), registered with the
spec's kind registry next to their builders, and the ``[harness.tiny]`` check of the embedded base."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from harness.backends.hf.candidates import build_base, build_full, build_lora
from harness.backends.hf.full import FULL, FULL_DEFAULTS
from harness.backends.hf.loaded import ADAPTER_OPTIONS, MODEL_OPTIONS, build_adapter, build_model
from harness.backends.hf.lora import LORA, LORA_DEFAULTS
from harness.backends.hf.tiny import TINY_LIMITS, TinyModelConfig, tiny_config_problem
from harness.errors import SpecError
from harness.spec.registry import KindFacts, register_kind, register_section_check
from harness.spec.table import Table, unknown_key
from harness.training.arguments import schedule_arguments

#: kinds that score labels by log-likelihood take a per-candidate ``scoring``
SCORED = ("scoring",)
#: local causal LMs are evaluated by transformers (default) or through vLLM
ENGINE = ("engine", "vllm")

KINDS = (
    KindFacts("base", build_base, (*SCORED, *ENGINE), summary="the untouched base model"),
    KindFacts("lora", build_lora, ("seed", *ENGINE), LORA_DEFAULTS, LORA.params, "a LoRA adapter trained here",
              check_schedule=schedule_arguments),
    KindFacts("full", build_full, ("seed", *ENGINE), FULL_DEFAULTS, FULL.params, "a full fine-tune trained here",
              check_schedule=schedule_arguments),
    KindFacts("adapter", build_adapter, (*ADAPTER_OPTIONS, "seed", *SCORED, *ENGINE),
              summary="an existing PEFT adapter", required=("path",)),
    KindFacts("model", build_model, (*MODEL_OPTIONS, "seed", *SCORED, *ENGINE),
              summary="an existing model directory", required=("path",)),
)


def check_tiny(t: Table) -> dict[str, Any]:
    """``[harness.tiny]``: sizes of the embedded base, by the fields of its config."""
    types = {f.name: type(f.default) for f in fields(TinyModelConfig) if f.name != "seed"}
    for key in t:
        if key == "seed":
            raise SpecError(f"{t.at(key)}: the embedded base takes harness.seed; remove this key")
        if key not in types:
            raise unknown_key(t.where, key, types)
        if types[key] is int:
            t.integer(key, 1, minimum=1, maximum=int(TINY_LIMITS[key]))
        else:
            t.number(key, 0.0, minimum=0.0, maximum=TINY_LIMITS[key])
    problem = tiny_config_problem(dict(t.data))
    if problem is not None:
        raise SpecError(f"{t.at(problem[0])}: {problem[1]}")
    return dict(t.data)


def register() -> None:
    """Register this family's kinds (called by :mod:`harness.kinds`, the one discovery point)."""
    register_kind(*KINDS)
    register_section_check("tiny", check_tiny)

"""The ``vllm = { ... }`` table of a candidate or suite with ``engine = "vllm"``: checked when the
spec loads (unknown keys and wrong types named by key path), read by the engine."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.errors import SpecError
from harness.protocol import MAX_COUNT, MAX_PORT

ENGINES = ("transformers", "vllm")

# key -> (type name, default)
FIELDS: dict[str, tuple[str, Any]] = {
    "base_url": ("str", None),             # a running server: connect, start nothing
    "model": ("str", None),                # served model id at base_url (default: the candidate's name)
    "executable": ("str", None),           # the `vllm` command (default: $FT_VLLM, else `vllm`)
    "port": ("int", None),                 # port of a started server (default: a free one)
    "max_model_len": ("int", None),        # default: the model's max_position_embeddings
    "dtype": ("str", "auto"),              # --dtype (float32 on CPU)
    "max_lora_rank": ("int", None),        # default: the largest r of the suite's adapters
    "tensor_parallel_size": ("int", 1),    # --tensor-parallel-size (GPUs per model)
    "pipeline_parallel_size": ("int", 1),  # --pipeline-parallel-size
    "extra_args": ("list", []),            # more `vllm serve` arguments, as given
    "startup_timeout_s": ("num", 600.0),   # bounded wait for readiness
    "concurrency": ("int", 16),            # requests in flight
    "timeout_s": ("num", 300.0),           # per request
    "verify_sample": ("int", 0),           # compare this many greedy outputs with transformers
    "api_key_env": ("str", None),          # env var with the server's --api-key (connect mode)
}


@dataclass(frozen=True)
class VLLMSettings:
    """How a candidate is served through vLLM (see :data:`FIELDS`)."""

    base_url: str | None = None
    model: str | None = None
    executable: str | None = None
    port: int | None = None
    max_model_len: int | None = None
    dtype: str = "auto"
    max_lora_rank: int | None = None
    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1
    extra_args: tuple[str, ...] = ()
    startup_timeout_s: float = 600.0
    concurrency: int = 16
    timeout_s: float = 300.0
    verify_sample: int = 0
    api_key_env: str | None = None
    env: dict[str, str] = field(default_factory=dict)

    def server_args(self) -> tuple[str, ...]:
        """The ``vllm serve`` arguments that shape the server (part of which server is reused)."""
        args = ["--dtype", self.dtype, "--generation-config", "vllm"]
        if self.max_model_len:
            args += ["--max-model-len", str(self.max_model_len)]
        if self.tensor_parallel_size > 1:
            args += ["--tensor-parallel-size", str(self.tensor_parallel_size)]
        if self.pipeline_parallel_size > 1:
            args += ["--pipeline-parallel-size", str(self.pipeline_parallel_size)]
        return (*args, *self.extra_args)


def check_vllm_table(value: Any, where: str) -> dict[str, Any]:
    """A checked ``vllm`` table (plain dict); every problem names ``where`` and the key."""
    if not isinstance(value, Mapping):
        raise SpecError(f"{where}: expected a table like {{ base_url = \"http://...\" }}, got {value!r}")
    for key, item in value.items():
        if key not in FIELDS:
            raise SpecError(f"{where}.{key}: unknown key (known: {', '.join(FIELDS)})")
        kind = FIELDS[key][0]
        low, high = (0 if key == "verify_sample" else 1), (MAX_PORT if key == "port" else MAX_COUNT)
        ok = {"str": isinstance(item, str) and bool(item.strip()),
              "int": isinstance(item, int) and not isinstance(item, bool) and item >= low,
              "num": isinstance(item, (int, float)) and not isinstance(item, bool) and item > 0,
              "list": isinstance(item, list) and all(isinstance(a, str) for a in item)}[kind]
        if ok and kind == "int" and item > high:
            raise SpecError(f"{where}.{key}: expected a whole number <= {high:,}, got {item!r}")
        if ok and kind == "num" and not math.isfinite(item):
            raise SpecError(f"{where}.{key}: expected a finite number, got {item!r}")
        if not ok:
            expected = {"str": "a non-empty string", "int": f"a whole number >= {low}",
                        "num": "a positive number", "list": "a list of strings"}[kind]
            raise SpecError(f"{where}.{key}: expected {expected}, got {item!r}")
    return dict(value)


def check_engine(value: Any, where: str) -> str:
    """``transformers`` or ``vllm``."""
    if value not in ENGINES:
        raise SpecError(f"{where}: expected one of {', '.join(repr(e) for e in ENGINES)}, got {value!r}")
    return str(value)


def settings_from(table: Mapping[str, Any]) -> VLLMSettings:
    """Settings from a checked table (defaults filled in)."""
    values = {key: table.get(key, default) for key, (_, default) in FIELDS.items()}
    values["extra_args"] = tuple(values["extra_args"] or ())
    return VLLMSettings(**values)

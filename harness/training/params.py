"""Training parameters: defaults shared by every trainer, value checks, and what a cache key hashes.

A check that fails raises :class:`ParamError`, which knows the parameter it is about, so the
lifecycle can name it by its key path (``suites.<suite>.candidates.<name>.params.<key>``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from harness.protocol import MAX_COUNT, MAX_EPOCHS
from harness.spec.registry import ParamProblem

# Evaluation, checkpoint and early-stopping parameters common to every trainer.
SCHEDULE_DEFAULTS: dict[str, Any] = {
    "eval_steps": None,          # evaluate every N steps (None: every epoch)
    "save_steps": None,          # checkpoint every N steps (None: at each evaluation / epoch)
    "save_total_limit": 2,       # checkpoints kept on disk (the best one is always kept)
    "load_best_model_at_end": False,
    "early_stopping_patience": None,  # evaluations without improvement before stopping
    "early_stopping_threshold": 0.0,  # how much better counts as an improvement
}

# Parameters that change how often work is saved, never the trained model: not part of cache keys.
OPERATIONAL_PARAMS = frozenset({"save_steps", "save_total_limit"})

PRECISIONS = ("auto", "fp16", "bf16", "no", "fp32", "none")
BIAS_CHOICES = ("none", "all", "lora_only")
_BOOLEAN_PARAMS = ("gradient_checkpointing", "load_best_model_at_end", "load_in_8bit", "load_in_4bit",
                   "bnb_4bit_use_double_quant")


class ParamError(ParamProblem):
    """A training parameter with an impossible value (or an unknown name); ``key`` names it."""


def merge_params(defaults: Mapping[str, Any], params: Mapping[str, Any] | None, title: str) -> dict[str, Any]:
    """``defaults`` overlaid with ``params``; an unknown key is refused (typos never pass silently)."""
    merged = dict(defaults)
    known = ", ".join(sorted(defaults))
    for key, value in (params or {}).items():
        if key not in defaults:
            raise ParamError(key, f"unknown {title} parameter; known: {known}",
                             f"unknown {title} parameter {key!r}; known: {known}")
        merged[key] = value
    return merged


def is_number(value: Any) -> bool:
    """A finite int or float (a bool is not a number here)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(float(value))


def check_positive(p: Mapping[str, Any], key: str, kind: type, *, allow_zero: bool = False,
                   maximum: float | None = None) -> None:
    """Refuse ``p[key]`` unless it is a positive (or, with ``allow_zero``, non-negative) number,
    whole when ``kind`` is int, at most ``maximum`` (default: :data:`MAX_COUNT` for integers)."""
    value = p[key]
    ok = is_number(value) and (kind is not int or float(value).is_integer())
    if not ok or float(value) < 0 or (float(value) == 0 and not allow_zero):
        expected = ("a non-negative" if allow_zero else "a positive") + (" integer" if kind is int else " number")
        raise ParamError(key, f"expected {expected}, got {value!r}")
    limit = maximum if maximum is not None else (MAX_COUNT if kind is int else None)
    if limit is not None and float(value) > limit:
        raise ParamError(key, f"expected at most {limit:,g}, got {value!r}")


def check_common_params(p: Mapping[str, Any]) -> None:
    """Refuse values that would otherwise fail deep inside transformers (or train nonsense)."""
    check_positive(p, "n_epochs", float, maximum=MAX_EPOCHS)
    check_positive(p, "learning_rate", float)
    for key in ("batch_size", "gradient_accumulation_steps", "max_length", "logging_steps"):
        check_positive(p, key, int)
    check_positive(p, "weight_decay", float, allow_zero=True)
    check_positive(p, "warmup_steps", float, allow_zero=True, maximum=MAX_COUNT)
    for key in ("eval_steps", "save_steps", "early_stopping_patience", "save_total_limit"):
        if p[key] is not None:
            check_positive(p, key, int)
    check_positive(p, "early_stopping_threshold", float, allow_zero=True)
    if not isinstance(p["lr_scheduler_type"], str) or not p["lr_scheduler_type"]:
        raise ParamError("lr_scheduler_type", f"expected a scheduler name such as \"linear\", "
                                              f"got {p['lr_scheduler_type']!r}")
    precision = p["precision"]
    if not isinstance(precision, str) or precision.lower() not in PRECISIONS:
        raise ParamError("precision", f"expected one of auto, fp16, bf16 or no, got {precision!r}")
    for key in _BOOLEAN_PARAMS:
        if key in p and not isinstance(p[key], bool):
            raise ParamError(key, f"expected true or false, got {p[key]!r}")


def _module_names(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) and v for v in value)


def check_adapter_params(p: Mapping[str, Any]) -> None:
    """Refuse impossible LoRA adapter values: rank, alpha (any positive number, never truncated),
    dropout, bias, target modules and modules saved beside the adapter."""
    check_positive(p, "r", int)
    check_positive(p, "alpha", float)
    dropout = p["dropout"]
    if not is_number(dropout) or not 0 <= dropout < 1:
        raise ParamError("dropout", f"expected a number in [0, 1), got {dropout!r}")
    if p["bias"] not in BIAS_CHOICES:
        raise ParamError("bias", f"expected one of {', '.join(BIAS_CHOICES)}, got {p['bias']!r}")
    targets = p["target_modules"]
    if not (isinstance(targets, str) and targets) and not _module_names(targets):
        raise ParamError("target_modules", "expected \"all-linear\", a module name or a list of module "
                                           f"names, got {targets!r}")
    saved = p["modules_to_save"]
    if saved is not None and not _module_names(saved):
        raise ParamError("modules_to_save", f"expected a list of module names, got {saved!r}")


def number(value: Any) -> int | float:
    """``value`` as an int when it is whole, else as a float (``alpha = 12.5`` stays 12.5)."""
    return int(value) if float(value).is_integer() else float(value)


def cache_params(params: Mapping[str, Any], defaults: Mapping[str, Any] | None = None,
                 key_fields: Iterable[str] | None = None) -> dict[str, Any]:
    """The effective parameters that determine a trained model (what its cache key hashes).

    Without ``key_fields`` every non-operational parameter counts. With them, those always
    count and any other parameter only when it differs from its default: a trainer that gains
    a parameter keeps the keys (and the cached artifacts) of every run that leaves it alone.
    """
    if key_fields is None:
        return {k: v for k, v in params.items() if k not in OPERATIONAL_PARAMS}
    fixed = frozenset(key_fields)
    base = defaults or {}
    return {k: v for k, v in params.items()
            if k in fixed or (k not in OPERATIONAL_PARAMS and (k not in base or v != base[k]))}

"""Precision and device choices made from the hardware actually present, with clear messages."""

from __future__ import annotations

from harness.errors import SpecError


def mixed_precision_flags(requested: str | None) -> dict[str, bool]:
    """``fp16`` / ``bf16`` training-argument flags for ``requested`` ("auto", "fp16", "bf16", "no").

    "auto" picks bf16 on GPUs that support it, fp16 on other GPUs and full precision on CPU.
    Asking for a precision the hardware lacks is an error that says what is available.
    """
    import torch

    requested = (requested or "auto").lower()
    cuda = torch.cuda.is_available()
    bf16_ok = cuda and torch.cuda.is_bf16_supported()
    if requested == "auto":
        if bf16_ok:
            return {"bf16": True, "fp16": False}
        return {"bf16": False, "fp16": cuda}
    if requested in ("no", "fp32", "none"):
        return {"bf16": False, "fp16": False}
    if requested == "bf16":
        if not bf16_ok:
            raise SpecError("precision 'bf16' needs a CUDA GPU with bfloat16 support (Ampere or newer); "
                            f"this machine has {'a GPU without bf16' if cuda else 'no GPU'}. "
                            "Use precision = 'auto' or 'no'.")
        return {"bf16": True, "fp16": False}
    if requested == "fp16":
        if not cuda:
            raise SpecError("precision 'fp16' training needs a CUDA GPU; this machine has none. "
                            "Use precision = 'auto' or 'no'.")
        return {"bf16": False, "fp16": True}
    raise SpecError(f"unknown precision {requested!r} (expected auto, fp16, bf16 or no)")


def world_size() -> int:
    """How many processes train together (``accelerate launch`` / ``torchrun`` set ``WORLD_SIZE``)."""
    import os

    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def cpu_only() -> bool:
    """No CUDA device here: processes training together use accelerate's multi-CPU (gloo) mode."""
    import torch

    return not torch.cuda.is_available()


def accelerator_available() -> bool:
    """Whether torch sees an accelerator (CUDA, MPS, XPU...): only then is pinned memory of use."""
    import torch

    accelerator = getattr(torch, "accelerator", None)
    return bool(accelerator.is_available()) if accelerator is not None else torch.cuda.is_available()


def distributed_flags() -> dict[str, bool]:
    """Training-argument flags for several processes on a machine without a GPU (``use_cpu``:
    without it transformers trains each process alone); nothing otherwise."""
    return {"use_cpu": True} if world_size() > 1 and cpu_only() else {}

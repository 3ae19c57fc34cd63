"""Batched inference that survives CUDA out-of-memory: halve the batch and retry, down to one.

Every batched model path (generation, label likelihood, encoder forwards) runs its batches
through :func:`oom_safe_batches`; at batch size one a further out-of-memory error becomes an
:class:`InferenceMemoryError` that says what to try.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from harness.errors import HarnessError

R = TypeVar("R")

INFERENCE_REMEDIES = (
    "try a smaller --ft-batch-size, a shorter max_new_tokens or max_length, fewer or shorter labels, "
    "8-bit/4-bit base loading, or a GPU with more memory"
)


class InferenceMemoryError(HarnessError, MemoryError):
    """Out of memory at batch size one: nothing smaller is left to try."""


def is_out_of_memory(exc: BaseException) -> bool:
    """True for ``torch.OutOfMemoryError`` and a ``RuntimeError`` saying "out of memory"."""
    import torch

    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def free_accelerator_memory() -> None:
    """Collect garbage and return cached CUDA blocks, so a smaller batch can fit."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def at_batch_size_one(what: str, exc: BaseException) -> InferenceMemoryError:
    """The error for an out-of-memory that no smaller batch can avoid."""
    return InferenceMemoryError(f"out of memory during {what} at batch size 1 "
                                f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); {INFERENCE_REMEDIES}")


def oom_safe_batches(order: Sequence[int], batch_size: int, run: Callable[[list[int]], R], *,
                     what: str, log: Callable[[str], None] | None = None) -> Iterator[tuple[list[int], R, float]]:
    """Yield ``(indices, run(indices), seconds)`` over ``order`` in slices of ``batch_size``.

    On out-of-memory the slice is retried at half the size (the smaller size is kept for the
    rest); at size one the error becomes :class:`InferenceMemoryError` naming ``what``.
    """
    size = max(1, int(batch_size))
    start = 0
    while start < len(order):
        indices = list(order[start:start + size])
        began = time.perf_counter()
        try:
            result = run(indices)
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            free_accelerator_memory()
            if size == 1:
                raise at_batch_size_one(what, exc) from exc
            size = max(1, size // 2)
            if log is not None:
                log(f"out of memory during {what}: retrying at batch size {size}")
            continue
        yield indices, result, time.perf_counter() - began
        start += len(indices)

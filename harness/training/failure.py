"""A failed training run as a ``TrainingError``: the candidate, the cause, the full traceback kept in
a file, and for out-of-memory what to change, most effective first."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.errors import TrainingError


def is_out_of_memory(exc: BaseException) -> bool:
    """A CUDA (or other accelerator) out-of-memory error."""
    import torch

    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower()


def oom_remedies(params: Mapping[str, Any], extra: Sequence[str] = ()) -> list[str]:
    """What to change when training ran out of memory, most effective first; ``extra`` holds the
    trainer's own remedies (quantised loading, LoRA instead of full fine-tuning)."""
    batch = int(params.get("batch_size") or 1)
    accumulation = int(params.get("gradient_accumulation_steps") or 1)
    remedies = []
    if batch > 1:
        remedies.append(f"a smaller batch with gradient accumulation: batch_size = {max(1, batch // 2)}, "
                        f"gradient_accumulation_steps = {accumulation * 2} (same effective batch)")
    if not params.get("gradient_checkpointing"):
        remedies.append("gradient_checkpointing = true (recomputes activations instead of storing them)")
    remedies.extend(extra)
    remedies.append(f"a shorter max_length (now {params.get('max_length')})")
    return remedies


def training_failure(exc: BaseException, *, where: str, params: Mapping[str, Any],
                     remedies: Sequence[str] = (), traceback_file: Path | None = None) -> TrainingError:
    """A ``TrainingError`` naming the candidate and the cause (with remedies for out-of-memory)."""
    text = str(exc).strip()
    cause = f"{type(exc).__name__}: {text.splitlines()[0][:300] if text else ''}"
    if is_out_of_memory(exc):
        message = (f"{where}: training ran out of accelerator memory ({cause}). "
                   f"Try: {'; '.join(oom_remedies(params, remedies))}")
    else:
        message = f"{where}: training failed ({cause})"
    if traceback_file is not None:
        message += f" [full traceback: {traceback_file}]"
    return TrainingError(message)


def write_traceback(work: Path | None, key: str, exc: BaseException, rank: int | None = None) -> Path | None:
    """Keep the full traceback of ``exc`` in the run's work folder (else the temp folder); its path,
    or None when it cannot be written."""
    import tempfile
    import traceback

    name = "traceback.txt" if rank is None else f"traceback-rank{rank}.txt"
    target = work / name if work is not None else Path(tempfile.gettempdir()) / f"ft-harness-{key}-{name}"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("".join(traceback.format_exception(exc)), encoding="utf-8")
    except OSError:
        return None
    return target

"""What a data-parallel training run was: processes, per-device batch, accumulation, global batch.

The global batch (per-device batch × gradient accumulation × processes) is what the optimiser
steps on, so it changes the result; the number of processes at the same global batch changes
only the floating-point order of the gradient sum (DDP averages the per-process gradients).
Both are recorded in the training summary. They are deliberately *not* in the artifact's cache
key: the key is the spec's own parameters, so a later single-process session (``pytest suites/``)
finds the adapter that ``torchrun`` trained; train with the launch you mean to keep, or change a
parameter (or ``--no-resume`` with a fresh cache) to train again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.training.hardware import world_size


def parallel_facts(params: Mapping[str, Any], processes: int | None = None) -> dict[str, int]:
    """``world_size``, ``per_device_batch``, ``gradient_accumulation_steps`` and ``global_batch``."""
    world = world_size() if processes is None else max(1, int(processes))
    per = int(params.get("batch_size", 1) or 1)
    accumulation = int(params.get("gradient_accumulation_steps", 1) or 1)
    return {"world_size": world, "per_device_batch": per, "gradient_accumulation_steps": accumulation,
            "global_batch": per * accumulation * world}


def record_parallelism(summary: Any, params: Mapping[str, Any]) -> Any:
    """``summary`` with the run's world size and global batch in its hyperparameters (and a note
    when several processes trained)."""
    facts = parallel_facts(params)
    summary.hyperparameters = {**summary.hyperparameters, "world_size": facts["world_size"],
                               "global_batch": facts["global_batch"]}
    if facts["world_size"] > 1:
        summary.notes = [*summary.notes, f"trained data-parallel by {facts['world_size']} processes: global batch "
                         f"{facts['global_batch']} = {facts['per_device_batch']} per device × "
                         f"{facts['gradient_accumulation_steps']} accumulation × {facts['world_size']}"]
    return summary

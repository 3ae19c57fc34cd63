"""Data-parallel evaluation: the processes of one ``torchrun`` / ``accelerate launch`` share a
candidate's eval set, each runs its part, and every process receives all outputs in example order.

accelerate's process state is built with ``cpu=True`` on a machine without a GPU (accelerate's
multi-CPU mode, gloo): without it each CPU process of a ``torchrun`` launch sees itself alone.
Local causal LMs share out whole length-sorted batches (``harness.backends.hf.sharding``), so their
outputs equal the single-process run's; any other candidate gets a contiguous slice of the prompts
from accelerate's ``split_between_processes``. The outputs are gathered with accelerate's
``gather_object``; only the main process writes the output cache (its entries are per prompt, so a
rerun with any number of processes finds them).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.backends.hf.sharding import is_local_causal_lm, shard_outputs
from harness.data.records import Message
from harness.protocol import Candidate, DecodeParams, Generation, LabelScorer


def launched_world_size() -> int:
    """How many processes the launcher started (``WORLD_SIZE``; 1 outside a launch)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


@dataclass(frozen=True)
class Shard:
    """This process's place among the processes evaluating together."""

    rank: int
    world: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def process_shard() -> Shard | None:
    """This process's shard under ``torchrun`` / ``accelerate launch`` (``None`` in one process)."""
    if launched_world_size() <= 1:
        return None
    import torch
    from accelerate import PartialState

    state = PartialState(cpu=not torch.cuda.is_available())
    if state.num_processes <= 1:
        return None
    return Shard(state.process_index, state.num_processes)


def wait_for_everyone(shard: Shard | None) -> None:
    """A barrier across the evaluating processes (nothing in one process)."""
    if shard is not None:
        from accelerate import PartialState

        PartialState().wait_for_everyone()


def _gather(pairs: list[tuple[int, Any]]) -> list[tuple[int, Any]]:
    from accelerate.utils import gather_object

    return list(gather_object(pairs))


def _my_slice(n: int) -> list[int]:
    from accelerate import PartialState

    with PartialState().split_between_processes(list(range(n))) as mine:
        return list(mine)


def run_chunk(candidate: Candidate, prompts: Sequence[list[Message]], shard: Shard, *,
              params: DecodeParams, labels: Sequence[str] | None) -> list[Generation]:
    """Every output of ``prompts`` (in order), each process having computed its share."""

    began = time.perf_counter()
    if is_local_causal_lm(candidate):
        found = shard_outputs(candidate, prompts, shard.rank, shard.world, params=params, labels=labels)
    else:
        mine = _my_slice(len(prompts))
        chosen = [prompts[i] for i in mine]
        if not chosen:
            outputs: list[Any] = []
        elif labels is not None:
            assert isinstance(candidate, LabelScorer)  # labels are asked of label scorers only
            outputs = candidate.predict_labels(chosen, list(labels))
        else:
            outputs = candidate.generate(chosen, params)
        found = dict(zip(mine, outputs, strict=True))
    if labels is not None:  # a label answer: its latency is this process's wall time per example
        per = (time.perf_counter() - began) / max(1, len(found))
        found = {i: Generation(text=label, latency_s=per) for i, label in found.items()}
    gathered = _gather([(i, dict(g.__dict__)) for i, g in found.items()])
    by_index = dict(gathered)
    missing = [i for i in range(len(prompts)) if i not in by_index]
    if missing:
        raise RuntimeError(f"sharded evaluation lost outputs for prompts {missing[:5]} "
                           f"({len(missing)} of {len(prompts)})")
    outputs = [Generation(**by_index[i]) for i in range(len(prompts))]
    counts = candidate.token_counts(prompts, [g.text for g in outputs]) if labels is not None else None
    if counts is not None:  # what answering a label costs, as in one process
        for g, (p, c) in zip(outputs, counts, strict=True):
            g.prompt_tokens, g.completion_tokens = p, c
    return outputs

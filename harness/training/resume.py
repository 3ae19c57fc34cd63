"""Resuming interrupted training: a stable work folder per cache key and its last whole checkpoint.

A training run keeps its checkpoints in ``<cache root>/work/<key>/checkpoints/`` so that, when
the process is killed, the next build of the same key finds them and calls
``trainer.train(resume_from_checkpoint=...)``. The folder is removed once the trained artifact
is stored in the cache. Builds of one key are serialised by the cache's key lock, so two
processes never train into the same folder at once.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from harness.cache import validate_key

WORK_DIRNAME = "work"
CHECKPOINTS_DIRNAME = "checkpoints"
TRAINER_STATE = "trainer_state.json"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def work_dir(cache_root: Path, key: str) -> Path:
    """The stable work folder of the training run behind cache key ``key``."""

    return Path(cache_root) / WORK_DIRNAME / validate_key(key)


def checkpoints_dir(work: Path) -> Path:
    """Where the trainer writes ``checkpoint-<step>`` folders inside a work folder."""
    return Path(work) / CHECKPOINTS_DIRNAME


def checkpoint_step(path: Path) -> int | None:
    """The global step of a ``checkpoint-<step>`` folder, or None for any other name."""
    match = _CHECKPOINT.match(Path(path).name)
    return int(match.group(1)) if match else None


def _is_complete(checkpoint: Path, step: int) -> bool:
    """A checkpoint is whole when its trainer state (written last) parses and names its step."""
    try:
        state = json.loads((checkpoint / TRAINER_STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(state, dict) and state.get("global_step") == step


def last_complete_checkpoint(folder: Path, *, remove_partial: bool = True) -> Path | None:
    """The newest whole checkpoint in ``folder`` (None if there is none).

    A checkpoint cut short by a kill lacks its trainer state; such folders newer than the one
    returned are removed when ``remove_partial`` is set, so the resumed run can write them again.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return None
    found = sorted(((step, path) for path in folder.iterdir()
                    if path.is_dir() and (step := checkpoint_step(path)) is not None), reverse=True)
    for step, path in found:
        if _is_complete(path, step):
            return path
        if remove_partial:
            shutil.rmtree(path, ignore_errors=True)
    return None


def remove_work_dir(work: Path) -> None:
    """Delete a finished run's work folder (checkpoints and all); missing is fine."""
    shutil.rmtree(work, ignore_errors=True)

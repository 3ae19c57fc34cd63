"""Shared set-up for benchmarks: the repository's spec, its embedded base model and eval splits."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SPEC = REPO / "fixtures" / "candidates.toml"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def context(cache_root: Path | None = None):
    """A build context over the repository spec (cache in a temporary folder unless given), made
    by the evaluation session exactly as the pytest plugin makes it."""
    from harness.session import EvalSession, SessionOptions

    root = cache_root or Path(tempfile.mkdtemp(prefix="ft-bench-cache-"))
    return EvalSession(SessionOptions(spec_path=SPEC, root_dir=REPO, cache_dir=root), log=lambda _m: None).ctx


def timed(fn: Callable[[], object], repeat: int = 1) -> tuple[float, object]:
    """Best wall time of ``repeat`` calls and the last result."""
    best = float("inf")
    result = None
    for _ in range(repeat):
        began = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - began)
    return best, result

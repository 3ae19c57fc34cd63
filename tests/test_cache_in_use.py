"""`ft-harness cache prune` in another process never removes an entry a running session uses."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import warm_python
from miniproject import make_project

from harness.cache import CacheStore


def _prune_everything(root: Path) -> subprocess.CompletedProcess:
    """``ft-harness cache prune --max-size 0B`` in a separate process (as a user would run it)."""
    return warm_python.run(["-m", "harness", "cache", "prune", "--max-size", "0B", "--cache-dir", str(root)],
                           timeout=120)


def _weights(out: Path) -> dict:
    (out / "weights.bin").write_bytes(os.urandom(2048))
    return {}


def test_prune_keeps_an_entry_in_use_and_removes_it_once_released(tmp_path: Path):
    store = CacheStore(tmp_path / "cache")
    used = store.get_or_build("adapter-1", _weights).path
    store.put_json("gen-1", [1, 2, 3])
    pruned = _prune_everything(store.root)
    assert pruned.returncode == 0, pruned.stderr
    assert "skipped adapter-1: in use" in pruned.stdout
    assert "removed gen-1" in pruned.stdout  # JSON entries are read at once: nothing holds them
    assert (used / "weights.bin").stat().st_size == 2048
    assert store.get_or_build("adapter-1", _weights).hit

    store.close()  # the session ended
    again = _prune_everything(store.root)
    assert again.returncode == 0, again.stderr
    assert "removed adapter-1" in again.stdout
    assert not used.exists()


def test_a_second_reader_shares_the_entry_and_prune_waits_for_both(tmp_path: Path):
    first, second = CacheStore(tmp_path / "cache"), CacheStore(tmp_path / "cache")
    first.get_or_build("adapter-1", _weights)
    assert second.get_or_build("adapter-1", _weights).hit  # a shared hold does not block readers
    first.close()
    assert "skipped adapter-1: in use" in _prune_everything(first.root).stdout
    second.close()
    assert "removed adapter-1" in _prune_everything(first.root).stdout


def test_an_entry_removed_behind_the_store_is_rebuilt(tmp_path: Path):
    store = CacheStore(tmp_path / "cache")
    path = store.get_or_build("adapter-1", _weights).path
    store.close()
    assert _prune_everything(store.root).returncode == 0
    assert not path.exists()
    rebuilt = store.get_or_build("adapter-1", _weights)
    assert not rebuilt.hit and (rebuilt.path / "weights.bin").exists()


@pytest.mark.slow
def test_prune_during_a_session_keeps_its_base_model_and_the_run_goes_on(tmp_path: Path):
    from harness.session import EvalSession, SessionOptions

    project = tmp_path / "p"
    spec = make_project(project)
    session = EvalSession(SessionOptions(spec_path=spec, root_dir=project, cache_dir=tmp_path / "cache"),
                          log=lambda _m: None)
    base_dir = session.ctx.base_model_dir()
    pruned = _prune_everything(tmp_path / "cache")
    assert pruned.returncode == 0, pruned.stderr
    assert "in use" in pruned.stdout
    assert (base_dir / "config.json").exists()
    result = session.evaluate("mini", "base")  # loads the base model from the kept entry
    assert result.n == 40
    session.close()

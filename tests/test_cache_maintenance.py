"""Listing, inspecting and pruning the cache: LRU order, age limits, locks respected, nothing broken."""

from __future__ import annotations

import os
import time
import warnings
from datetime import timedelta
from pathlib import Path

import pytest
from filelock import FileLock

from harness.cache import CacheStore, hash_file

DAY = 86400.0


def _artifact(store: CacheStore, key: str, size: int, description: str = "") -> Path:
    def build(out: Path) -> dict:
        (out / "blob.bin").write_bytes(os.urandom(size))
        return {"size": size}

    return store.get_or_build(key, build, description=description).path


def _age(store: CacheStore, key: str, days: float) -> None:
    """Pretend ``key`` was last used ``days`` ago."""
    stamp = time.time() - days * DAY
    artifact = store.root / "artifacts" / key
    target = artifact / ".ft-last-used" if artifact.exists() else store.root / "json" / f"{key}.json"
    os.utime(target, (stamp, stamp))


def _on_disk(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


@pytest.fixture
def store(tmp_path: Path) -> CacheStore:
    return CacheStore(tmp_path / "cache")


def test_entries_list_both_kinds_with_their_details(store: CacheStore):
    path = _artifact(store, "adapter-1", 1000, description="tiny LoRA")
    store.put_json("gen-1", {"texts": ["x"]}, description="generations")
    entries = {entry.key: entry for entry in store.entries()}
    assert sorted(entries) == ["adapter-1", "gen-1"]
    adapter, gen = entries["adapter-1"], entries["gen-1"]
    assert (adapter.kind, adapter.namespace, adapter.description) == ("artifact", "adapter",
                                                                      "tiny LoRA")
    assert (gen.kind, gen.namespace, gen.description) == ("json", "gen", "generations")
    assert adapter.size == _on_disk(path) and adapter.size > 1000
    assert gen.size == _on_disk(store.root / "json" / "gen-1.json")
    assert all(abs(e.created - time.time()) < 60 and e.readable for e in entries.values())
    assert adapter.as_dict()["created"].endswith("+00:00")


def test_a_hit_updates_last_used(store: CacheStore):
    _artifact(store, "adapter-1", 10)
    store.put_json("gen-1", 1)
    _age(store, "adapter-1", 3)
    _age(store, "gen-1", 3)
    before = {e.key: e.last_used for e in store.entries()}
    assert all(stamp < time.time() - 2 * DAY for stamp in before.values())
    _artifact(store, "adapter-1", 10)
    store.get_json("gen-1")
    after = {e.key: e.last_used for e in store.entries()}
    assert all(stamp > time.time() - 60 for stamp in after.values())


def test_info_reports_files_metadata_and_a_fresh_check(store: CacheStore):
    path = _artifact(store, "adapter-1", 64, description="tiny LoRA")
    info = store.info("adapter-1")
    assert info["status"] == "ok"
    assert info["metadata"] == {"size": 64}
    assert info["files"] == {"blob.bin": {"size": 64, "sha256": hash_file(path / "blob.bin")}}
    store.put_json("gen-1", [1, 2])
    assert store.info("gen-1")["status"] == "ok"
    assert store.info("absent-1") is None
    (path / "blob.bin").write_bytes(b"\x00" * 64)
    assert store.info("adapter-1")["status"].startswith("corrupt: file 'blob.bin'")
    assert (path / "blob.bin").exists()  # info only looks; it never deletes


def test_prune_by_age_removes_only_entries_unused_for_that_long(store: CacheStore):
    for key in ("old-1", "old-2", "recent-1"):
        _artifact(store, key, 100)
    store.put_json("oldjson-1", [1])
    for key in ("old-1", "old-2", "oldjson-1"):
        _age(store, key, 10)
    _age(store, "recent-1", 1)
    store.close()  # the run that used them is over
    result = store.prune(older_than=timedelta(days=7))
    assert sorted(e.key for e in result.removed) == ["old-1", "old-2", "oldjson-1"]
    assert [e.key for e in store.entries()] == ["recent-1"]
    assert not (store.root / "artifacts" / "old-1").exists()


def test_prune_by_size_removes_least_recently_used_first(store: CacheStore):
    for days, key in enumerate(["newest-1", "middle-1", "oldest-1", "ancient-1"]):
        _artifact(store, key, 2000)
        _age(store, key, days)
    sizes = {e.key: e.size for e in store.entries()}
    limit = sizes["newest-1"] + sizes["middle-1"]
    store.close()
    result = store.prune(max_size=limit)
    assert [e.key for e in result.removed] == ["ancient-1", "oldest-1"]
    assert sorted(e.key for e in store.entries()) == ["middle-1", "newest-1"]
    assert sum(e.size for e in store.entries()) <= limit
    assert result.freed == sizes["ancient-1"] + sizes["oldest-1"]
    with warnings.catch_warnings():  # what is left is whole and usable
        warnings.simplefilter("error")
        assert all(store.get_or_build(k, lambda out: None).hit for k in ("middle-1", "newest-1"))


def test_prune_dry_run_removes_nothing(store: CacheStore):
    _artifact(store, "adapter-1", 100)
    _age(store, "adapter-1", 30)
    store.close()
    result = store.prune(older_than=timedelta(days=1), dry_run=True)
    assert [e.key for e in result.removed] == ["adapter-1"]
    assert [e.key for e in store.entries()] == ["adapter-1"]


def test_prune_skips_an_entry_another_process_holds(store: CacheStore):
    _artifact(store, "busy-1", 100)
    _artifact(store, "idle-1", 100)
    for key in ("busy-1", "idle-1"):
        _age(store, key, 30)
    store.close()
    with FileLock(store.root / "locks" / "busy-1.lock"):
        result = store.prune(older_than=timedelta(days=1))
    assert [e.key for e in result.removed] == ["idle-1"]
    assert [e.key for e in result.skipped_locked] == ["busy-1"]
    assert store.get_or_build("busy-1", lambda out: None).hit


def test_prune_always_removes_broken_entries_and_abandoned_builds(store: CacheStore):
    good = _artifact(store, "good-1", 10)
    broken = _artifact(store, "broken-1", 10)
    (broken / ".ft-manifest.json").unlink()
    (store.root / "tmp" / "crashed-1~abc123").mkdir()
    (store.root / "tmp" / "running-1~def456").mkdir()
    (store.root / "json" / ".gen-1~xyz.tmp").write_text("half")
    store.close()
    with FileLock(store.root / "locks" / "running-1.lock"):
        result = store.prune(older_than=timedelta(days=365))
    assert [e.key for e in result.removed] == ["broken-1"]
    assert result.leftovers_removed == 2
    assert [p.name for p in (store.root / "tmp").iterdir()] == ["running-1~def456"]
    assert [p.name for p in (store.root / "json").iterdir()] == []
    assert good.exists() and not broken.exists()


def test_listing_a_missing_cache_is_empty_and_creates_nothing(tmp_path: Path):
    store = CacheStore(tmp_path / "never-made")
    assert store.entries() == []
    assert store.prune(max_size=0).removed == []
    assert not (tmp_path / "never-made").exists()

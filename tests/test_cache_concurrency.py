"""Several real processes (spawned, like pytest-xdist workers) asking for one key build it once."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

from harness.cache import CacheStore, cache_key

KEY = cache_key("adapter", {"rank": 4, "seed": 0})
WORKERS = 3


def _record_build(log: Path) -> None:
    # O_APPEND writes of one short line are atomic, so concurrent builders cannot hide each other.
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, f"{os.getpid()}\n".encode())
    finally:
        os.close(fd)


def _build_artifact(args: tuple[str, str]) -> tuple[bool, str, dict]:
    root, log = args

    def build(out: Path) -> dict:
        _record_build(Path(log))
        time.sleep(0.5)  # long enough that the other workers arrive while this one builds
        (out / "weights.bin").write_bytes(os.urandom(4096))
        return {"built_by": os.getpid()}

    result = CacheStore(Path(root)).get_or_build(KEY, build)
    return result.hit, (result.path / "weights.bin").read_bytes().hex(), dict(result.metadata)


def _compute_json(args: tuple[str, str]) -> list[int]:
    root, log = args

    def compute() -> list[int]:
        _record_build(Path(log))
        time.sleep(0.3)
        return [os.getpid()]

    return CacheStore(Path(root)).get_or_compute_json("scores-1", compute)


def _crash_while_building(root: str) -> None:
    def build(out: Path) -> None:
        (out / "half.bin").write_bytes(b"partial")
        os._exit(17)  # the process dies holding the lock, leaving its staging folder

    CacheStore(Path(root)).get_or_build(KEY, build)


def _run_in_processes(function, args: list) -> list:
    context = multiprocessing.get_context("spawn")
    with context.Pool(len(args)) as pool:
        return pool.map(function, args)


def test_processes_build_an_artifact_exactly_once(tmp_path: Path):
    root, log = tmp_path / "cache", tmp_path / "builds.log"
    results = _run_in_processes(_build_artifact, [(str(root), str(log))] * WORKERS)
    assert len(log.read_text().splitlines()) == 1
    assert sorted(hit for hit, _, _ in results) == [False] + [True] * (WORKERS - 1)
    assert len({weights for _, weights, _ in results}) == 1  # everyone got the same bytes
    assert len({meta["built_by"] for _, _, meta in results}) == 1
    assert list((root / "tmp").iterdir()) == []


def test_processes_compute_a_json_result_exactly_once(tmp_path: Path):
    root, log = tmp_path / "cache", tmp_path / "computes.log"
    results = _run_in_processes(_compute_json, [(str(root), str(log))] * WORKERS)
    assert len(log.read_text().splitlines()) == 1
    assert all(result == results[0] for result in results)


def test_a_build_killed_midway_leaves_no_entry_and_its_leftovers_are_pruned(tmp_path: Path):
    root = tmp_path / "cache"
    process = multiprocessing.get_context("spawn").Process(target=_crash_while_building,
                                                           args=(str(root),))
    process.start()
    process.join(timeout=60)
    assert process.exitcode == 17
    assert not (root / "artifacts" / KEY).exists()
    assert len(list((root / "tmp").iterdir())) == 1  # the dead build's staging folder

    store = CacheStore(root)
    result = store.get_or_build(KEY, lambda out: (out / "w.bin").write_bytes(b"ok") and None)
    assert result.hit is False  # the lock died with its process; nobody waits forever
    assert store.prune().leftovers_removed == 1
    assert list((root / "tmp").iterdir()) == []
    assert store.get_or_build(KEY, lambda out: None).hit

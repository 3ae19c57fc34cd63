"""Cache locks: one build lock per key, so concurrent processes (pytest-xdist workers) build an
entry once, and one in-use lock per key, shared by every process using the entry, which
``prune`` must take exclusively before it may remove the entry."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from harness.cache.keys import validate_key
from harness.cache.layout import CacheLayout
from harness.errors import CacheError


@contextmanager
def key_lock(layout: CacheLayout, key: str, timeout: float | None = None) -> Iterator[None]:
    """Hold the lock of ``key``; waits forever when ``timeout`` is None, else raises CacheError."""
    path = layout.lock_file(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path, timeout=-1 if timeout is None else timeout)
    try:
        lock.acquire()
    except Timeout:
        raise CacheError(f"cache key {key!r} is locked by another process ({path}); "
                         f"gave up after {timeout} s") from None
    try:
        yield
    finally:
        lock.release()


def try_key_lock(layout: CacheLayout, key: str) -> FileLock | None:
    """The lock of ``key`` acquired without waiting, or None when another process holds it."""
    path = layout.lock_file(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        return None
    return lock


# -- in-use locks: a reader holds a shared lock on each entry it uses; prune needs it exclusively --
try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no in-use locks, a pruned entry is rebuilt
    fcntl = None  # type: ignore[assignment]


def use_lock_file(layout: CacheLayout, key: str) -> Path:
    """The lock file readers share while they use entry ``key`` (``locks/<key>.in-use``)."""
    return layout.locks / f"{validate_key(key)}.in-use"


def _open_use_lock(layout: CacheLayout, key: str) -> int:
    path = use_lock_file(layout, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o666)


def hold_in_use(layout: CacheLayout, key: str) -> int | None:
    """Take a shared in-use hold on ``key`` (released by :func:`release_in_use`); a file
    descriptor, or None where the platform has no ``flock`` or the lock file cannot be made."""
    if fcntl is None:
        return None
    try:
        handle = _open_use_lock(layout, key)
    except OSError:  # a read-only cache: nothing can prune it either
        return None
    try:
        fcntl.flock(handle, fcntl.LOCK_SH)
    except OSError:
        os.close(handle)
        return None
    return handle


def release_in_use(handle: int | bool | None) -> None:
    """Drop a hold taken by :func:`hold_in_use` or :func:`try_exclusive_use` (closing the
    descriptor releases the lock)."""
    if isinstance(handle, int) and not isinstance(handle, bool):
        with contextlib.suppress(OSError):
            os.close(handle)


def try_exclusive_use(layout: CacheLayout, key: str) -> int | bool:
    """An exclusive hold on ``key`` when no reader uses it (a descriptor, or True where the
    platform has no ``flock``), else False: the entry is in use and must not be removed."""
    if fcntl is None:
        return True
    handle = _open_use_lock(layout, key)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(handle)
        return False
    return handle

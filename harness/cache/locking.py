"""One file lock per key, so concurrent processes (pytest-xdist workers) build an entry once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from filelock import FileLock, Timeout

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

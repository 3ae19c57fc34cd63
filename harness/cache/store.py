"""The cache store: artifact directories and small JSON results, checked on every read.

Entries are written privately and renamed into place, so a reader sees a whole entry or
none; every read is verified against its checksums and a corrupt entry is discarded,
reported (``CacheCorruptionWarning`` plus a counter) and rebuilt, never used.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
import warnings
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from harness.cache.jsonentry import decode_json_entry, encode_json_entry
from harness.cache.keys import namespace_of, validate_key
from harness.cache.layout import CacheLayout
from harness.cache.locking import hold_in_use, key_lock, release_in_use
from harness.cache.maintenance import CacheEntry, PruneResult, entry_info, list_entries, prune
from harness.cache.manifest import (
    LAST_USED_NAME,
    Verified,
    build_manifest,
    check_metadata,
    signature,
    verify_entry,
    write_manifest,
)
from harness.errors import CacheError
from harness.jsonio import write_atomic_bytes

Builder = Callable[[Path], "Mapping[str, Any] | None"]
_MISSING = object()


class CacheCorruptionWarning(UserWarning):
    """A cache entry failed its integrity check; it was discarded and is rebuilt, never used."""


@dataclass(frozen=True)
class CacheResult:
    """The outcome of :meth:`CacheStore.get_or_build`: where the artifact is and how it got there."""

    path: Path
    hit: bool
    rebuilt_corrupt: bool = False
    metadata: Mapping[str, Any] = field(default_factory=dict)
    key: str = ""


class _Counters:
    """Per-namespace hits, misses and entries rebuilt after corruption, for the run info."""

    def __init__(self) -> None:
        self._counts: dict[str, dict[str, int]] = {}

    def add(self, key: str, outcome: str) -> None:
        row = self._counts.setdefault(namespace_of(key),
                                      {"hits": 0, "misses": 0, "rebuilt_corrupt": 0})
        row[outcome] += 1

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {namespace: dict(row) for namespace, row in sorted(self._counts.items())}


def _remove_all(paths: list[Path]) -> None:
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)


def _release_all(held: dict[str, int | None]) -> None:
    for handle in held.values():
        release_in_use(handle)
    held.clear()


def _cleanup(paths: list[Path], held: dict[str, int | None]) -> None:
    _remove_all(paths)
    _release_all(held)


class CacheStore:
    """A content-addressed cache rooted at ``root`` (created lazily, atomically, on first write).

    With ``enabled=False`` every artifact is built into a fresh temporary directory (removed
    by :meth:`close`) and nothing is read from or written to ``root``. ``lock_timeout`` bounds
    the wait for another process building the same key (None waits as long as it takes).
    Every artifact handed out stays under a shared in-use lock until :meth:`close`, so
    ``prune`` in another process keeps it while this one may still read its files.
    """

    def __init__(self, root: Path, *, enabled: bool = True,
                 lock_timeout: float | None = None) -> None:
        self.root = Path(root)
        self.enabled = enabled
        self.lock_timeout = lock_timeout
        self._layout = CacheLayout(self.root)
        self._counters = _Counters()
        self._verified: dict[str, Verified] = {}
        self._scratch: list[Path] = []
        self._in_use: dict[str, int | None] = {}
        self._finalizer = weakref.finalize(self, _cleanup, self._scratch, self._in_use)

    def __repr__(self) -> str:
        state = "enabled" if self.enabled else "disabled"
        return f"CacheStore({str(self.root)!r}, {state})"

    def __enter__(self) -> CacheStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the entries this store handed out (``prune`` may remove them again) and remove
        the temporary directories built while disabled (their paths become invalid)."""
        _remove_all(self._scratch)
        self._scratch.clear()
        _release_all(self._in_use)

    def _hold(self, key: str) -> None:
        """Keep a shared in-use lock on artifact ``key`` until :meth:`close`, so a concurrent
        ``prune`` leaves the entry alone while this process may still read its files."""
        if key not in self._in_use:
            self._in_use[key] = hold_in_use(self._layout, key)

    # -- artifacts -------------------------------------------------------------------------

    def get_or_build(self, key: str, build: Builder, *, description: str = "") -> CacheResult:
        """The verified artifact directory of ``key``, running ``build(tmp_dir)`` only on a miss.

        ``build`` writes files into the directory it is given and may return JSON-ready
        metadata. Concurrent processes asking for the same key build it once: the others wait
        for the lock and then get a hit. A builder that raises leaves nothing behind.
        """
        validate_key(key)
        if not self.enabled:
            return self._build_scratch(key, build)
        self._layout.ensure()
        entry = self._layout.artifact_dir(key)
        with key_lock(self._layout, key, self.lock_timeout):
            rebuilt_corrupt = False
            if os.path.lexists(entry):
                try:
                    manifest, verified = verify_entry(entry, key,
                                                      known_good=self._verified.get(key))
                except CacheError as problem:
                    self._report_corruption(key, "artifact", problem)
                    self._verified.pop(key, None)
                    self._layout.discard(entry)
                    rebuilt_corrupt = True
                else:
                    self._hold(key)
                    self._verified[key] = verified
                    _touch(entry / LAST_USED_NAME)
                    self._counters.add(key, "hits")
                    return CacheResult(entry, True, False, manifest["metadata"], key)
            metadata = self._build_entry(key, build, description, entry)
            self._hold(key)
        self._counters.add(key, "misses")
        return CacheResult(entry, False, rebuilt_corrupt, metadata, key)

    def _build_entry(self, key: str, build: Builder, description: str,
                     entry: Path) -> dict[str, Any]:
        staging = Path(tempfile.mkdtemp(prefix=f"{key}~", dir=self._layout.tmp))
        try:
            returned = build(staging)
            hashed_at = time.time()
            manifest = build_manifest(staging, key=key, description=description,
                                      metadata=returned)
            write_manifest(staging, manifest)
            (staging / LAST_USED_NAME).touch()
            staging.rename(entry)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        self._verified[key] = Verified(signature(entry, manifest), hashed_at)
        return manifest["metadata"]

    def _build_scratch(self, key: str, build: Builder) -> CacheResult:
        scratch = Path(tempfile.mkdtemp(prefix=f"ft-harness-nocache-{key}~"))
        try:
            metadata = check_metadata(key, build(scratch))
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        self._scratch.append(scratch)
        self._counters.add(key, "misses")
        return CacheResult(scratch, False, False, metadata, key)

    # -- JSON results ----------------------------------------------------------------------

    def get_json(self, key: str) -> Any | None:
        """The stored JSON value of ``key``, or None on a miss (a corrupt entry is a miss)."""
        value = self._read_json(key)
        self._counters.add(key, "misses" if value is _MISSING else "hits")
        return None if value is _MISSING else value

    def put_json(self, key: str, value: Any, *, description: str = "") -> None:
        """Store a JSON-serialisable value under ``key`` atomically (temp file + os.replace)."""
        data = encode_json_entry(validate_key(key), value, description=description)
        if self.enabled:
            self._write_json(key, data)

    def get_or_compute_json(self, key: str, compute: Callable[[], Any], *,
                            description: str = "") -> Any:
        """The stored value of ``key``, or ``compute()`` stored under it; computed once across
        processes (the key's lock is held while computing)."""
        validate_key(key)
        if not self.enabled:
            self._counters.add(key, "misses")
            return compute()
        value = self._read_json(key)
        if value is _MISSING:
            with key_lock(self._layout, key, self.lock_timeout):
                value = self._read_json(key)
                if value is _MISSING:
                    value = compute()
                    self._write_json(key, encode_json_entry(key, value, description=description))
                    self._counters.add(key, "misses")
                    return value
        self._counters.add(key, "hits")
        return value

    def _read_json(self, key: str) -> Any:
        validate_key(key)
        if not self.enabled:
            return _MISSING
        path = self._layout.json_file(key)
        try:
            raw = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return _MISSING
        except OSError as exc:
            raw = None
            problem: CacheError | None = CacheError(f"unreadable: {exc}")
        else:
            problem = None
        if raw is not None:
            try:
                _, value = decode_json_entry(raw, key)
            except CacheError as exc:
                problem = exc
            else:
                _touch(path)
                return value
        self._report_corruption(key, "JSON entry", problem)
        self._layout.discard(path)
        return _MISSING

    def _write_json(self, key: str, data: bytes) -> None:
        self._layout.ensure()
        # the ".<key>~" prefix lets prune find leftovers of crashed writers; entries are rebuilt, not fsynced
        write_atomic_bytes(self._layout.json_file(key), data, durable=False, prefix=f".{key}~")

    # -- reporting and maintenance ---------------------------------------------------------

    def _report_corruption(self, key: str, kind: str, problem: object) -> None:
        self._counters.add(key, "rebuilt_corrupt")
        warnings.warn(CacheCorruptionWarning(
            f"cache {kind} {key!r} in {self.root} is corrupt ({problem}); it was discarded "
            "and will be rebuilt"), stacklevel=3)

    def stats(self) -> dict[str, dict[str, int]]:
        """``{namespace: {"hits": n, "misses": n, "rebuilt_corrupt": n}}`` for this process."""
        return self._counters.as_dict()

    def entries(self) -> list[CacheEntry]:
        """Every entry in the cache folder (empty when disabled or when the folder is absent)."""
        return list_entries(self._layout) if self.enabled else []

    def info(self, key: str) -> dict[str, Any] | None:
        """Details of one entry (files, metadata, a fresh integrity check), or None if absent."""
        return entry_info(self._layout, key) if self.enabled else None

    def prune(self, older_than: timedelta | None = None, max_size: int | None = None, *,
              dry_run: bool = False) -> PruneResult:
        """Remove entries unused for ``older_than``, then least recently used ones until the
        cache holds at most ``max_size`` bytes; broken entries and abandoned builds always go."""
        if not self.enabled:
            return PruneResult()
        return prune(self._layout, older_than=older_than, max_size=max_size, dry_run=dry_run)


def _touch(path: Path) -> None:
    """Record a use; failing to (read-only cache) never fails the read."""
    with contextlib.suppress(OSError):
        path.touch()

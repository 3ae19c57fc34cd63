"""Listing, inspecting and pruning cache entries (used by ``ft-harness cache``)."""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from harness.cache.hashing import list_files
from harness.cache.jsonentry import decode_json_entry, read_json_header
from harness.cache.keys import namespace_of, validate_key
from harness.cache.layout import CacheLayout
from harness.cache.locking import release_in_use, try_exclusive_use, try_key_lock
from harness.cache.manifest import LAST_USED_NAME, read_manifest, verify_entry
from harness.errors import CacheError


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class CacheEntry:
    """One entry as listed by ``ft-harness cache ls``; ``readable`` is False for a broken one."""

    key: str
    kind: str  # "artifact" or "json"
    size: int
    created: float | None
    last_used: float | None
    description: str
    path: Path
    readable: bool = True

    @property
    def namespace(self) -> str:
        """The key's namespace (``adapter`` for ``adapter-3f2a…``)."""
        return namespace_of(self.key)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready fields (times as ISO 8601 UTC, size in bytes)."""
        return {
            "key": self.key, "namespace": self.namespace, "kind": self.kind, "size": self.size,
            "created": _iso(self.created), "last_used": _iso(self.last_used),
            "description": self.description, "path": str(self.path), "readable": self.readable,
        }


def _is_key(name: str) -> bool:
    try:
        validate_key(name)
    except ValueError:
        return False
    return True


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def _disk_size(folder: Path) -> int:
    total = 0
    for rel in list_files(folder):
        try:
            total += (folder / rel).stat().st_size
        except OSError:
            continue
    return total


def _artifact_entry(path: Path) -> CacheEntry:
    key = path.name
    try:
        manifest = read_manifest(path, key)
    except CacheError:
        return CacheEntry(key, "artifact", _disk_size(path) if path.is_dir() else 0, None,
                          _mtime(path), "", path, readable=False)
    created = float(manifest.get("created") or 0.0)
    return CacheEntry(key, "artifact", _disk_size(path), created,
                      _mtime(path / LAST_USED_NAME) or created,
                      str(manifest.get("description", "")), path)


def _json_entry(path: Path) -> CacheEntry:
    key = path.name.removesuffix(".json")
    size = path.stat().st_size
    try:
        with path.open("rb") as handle:
            header = read_json_header(handle.readline(), key)
    except (OSError, CacheError):
        return CacheEntry(key, "json", size, None, _mtime(path), "", path, readable=False)
    return CacheEntry(key, "json", size, float(header.get("created") or 0.0), _mtime(path),
                      str(header.get("description", "")), path)


def list_entries(layout: CacheLayout) -> list[CacheEntry]:
    """Every artifact and JSON entry in the cache, sorted by key; never raises on a broken one."""
    found: list[CacheEntry] = []
    if layout.artifacts.is_dir():
        found.extend(_artifact_entry(path) for path in layout.artifacts.iterdir()
                     if _is_key(path.name))
    if layout.json.is_dir():
        found.extend(_json_entry(path) for path in layout.json.iterdir()
                     if path.suffix == ".json" and _is_key(path.name.removesuffix(".json")))
    return sorted(found, key=lambda entry: (entry.key, entry.kind))


def entry_info(layout: CacheLayout, key: str) -> dict[str, Any] | None:
    """Everything known about ``key`` (files, metadata, a fresh integrity check), or None if absent."""
    validate_key(key)
    artifact, json_path = layout.artifact_dir(key), layout.json_file(key)
    if os.path.lexists(artifact):
        info = _artifact_entry(artifact).as_dict()
        try:
            manifest, _ = verify_entry(artifact, key)
        except CacheError as problem:
            info.update(status=f"corrupt: {problem}", metadata={}, files={})
        else:
            info.update(status="ok", metadata=manifest["metadata"], files=manifest["files"])
        return info
    if os.path.lexists(json_path):
        info = _json_entry(json_path).as_dict()
        try:
            decode_json_entry(json_path.read_bytes(), key)
        except (OSError, CacheError) as problem:
            info["status"] = f"corrupt: {problem}"
        else:
            info["status"] = "ok"
        return info
    return None


@dataclass
class PruneResult:
    """What a prune removed (or would remove, in a dry run) and what it kept."""

    removed: list[CacheEntry] = field(default_factory=list)
    kept: list[CacheEntry] = field(default_factory=list)
    skipped_locked: list[CacheEntry] = field(default_factory=list)  # being built, or in use by a run
    leftovers_removed: int = 0

    @property
    def freed(self) -> int:
        """Bytes removed (or that would be, in a dry run)."""
        return sum(entry.size for entry in self.removed)

    @property
    def kept_size(self) -> int:
        """Bytes left in the cache."""
        return sum(entry.size for entry in self.kept)


def _select_for_removal(entries: list[CacheEntry], older_than: timedelta | None,
                        max_size: int | None, now: float) -> list[CacheEntry]:
    """Broken entries, entries unused for ``older_than``, then least recently used until small enough."""
    by_last_use = sorted(entries, key=lambda e: (e.last_used or e.created or 0.0, e.key))
    doomed = [e for e in by_last_use if not e.readable]
    if older_than is not None:
        cutoff = now - older_than.total_seconds()
        doomed += [e for e in by_last_use
                   if e.readable and (e.last_used or e.created or 0.0) < cutoff]
    if max_size is not None:
        chosen = {id(e) for e in doomed}
        remaining = [e for e in by_last_use if id(e) not in chosen]
        total = sum(e.size for e in remaining)
        for entry in remaining:
            if total <= max_size:
                break
            doomed.append(entry)
            total -= entry.size
    return doomed


def _remove_leftovers(layout: CacheLayout) -> int:
    """Delete builds abandoned by crashed processes (their key is unlocked) and stale trash."""
    removed = 0
    for folder in (layout.tmp, layout.json):
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            name = path.name.lstrip(".")
            if folder == layout.json and not path.name.startswith("."):
                continue  # a real JSON entry, not a temp file
            key = name.rpartition("~")[0]
            if not _is_key(key):
                continue
            lock = try_key_lock(layout, key)
            if lock is None:
                continue  # still being built
            try:
                layout.discard(path)
                removed += 1
            finally:
                lock.release()
    if layout.trash.is_dir():
        for path in layout.trash.iterdir():
            _delete(path)
            removed += 1
    return removed


def _delete(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def prune(layout: CacheLayout, *, older_than: timedelta | None = None,
          max_size: int | None = None, dry_run: bool = False,
          now: float | None = None) -> PruneResult:
    """Remove broken entries, entries unused for ``older_than``, then least recently used ones
    until the total size is at most ``max_size``. An entry locked by a running build, or held
    in use by a running session (its shared in-use lock), is skipped and kept.

    Each removal renames the entry out of place first, so no reader ever sees half of one.
    """
    entries = list_entries(layout)
    doomed = _select_for_removal(entries, older_than, max_size, time.time() if now is None else now)
    doomed_ids = {id(e) for e in doomed}
    result = PruneResult(kept=[e for e in entries if id(e) not in doomed_ids])
    for entry in doomed:
        lock = try_key_lock(layout, entry.key)
        if lock is None:
            result.skipped_locked.append(entry)
            result.kept.append(entry)
            continue
        try:
            in_use = _remove_unless_in_use(layout, entry, dry_run=dry_run)
        finally:
            lock.release()
        (result.skipped_locked if in_use else result.removed).append(entry)
        if in_use:
            result.kept.append(entry)
    if dry_run:
        return result
    result.leftovers_removed = _remove_leftovers(layout)
    return result


def _remove_unless_in_use(layout: CacheLayout, entry: CacheEntry, *, dry_run: bool) -> bool:
    """Remove ``entry`` (its build lock is held) unless a reader holds it in use; True if in use."""
    if entry.kind != "artifact":
        if not dry_run:
            layout.discard(entry.path)
        return False
    hold = try_exclusive_use(layout, entry.key)
    if hold is False:
        return True
    try:
        if not dry_run:
            layout.discard(entry.path)
    finally:
        release_in_use(hold)
    return False

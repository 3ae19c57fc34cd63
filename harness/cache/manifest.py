"""The manifest of an artifact directory: per-file size and sha256, and checking an entry against it."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.cache.hashing import BOOKKEEPING_FILES, hash_file, list_files
from harness.errors import CacheError
from harness.jsonio import strict_dumps

MANIFEST_NAME = ".ft-manifest.json"
LAST_USED_NAME = ".ft-last-used"
MANIFEST_FORMAT = 1
RACY_WINDOW_S = 2.0

# (relative path, size, mtime_ns, ctime_ns, inode) of every file: any write changes it.
Signature = tuple[tuple[str, int, int, int, int], ...]


def _content_files(entry: Path) -> list[str]:
    return [rel for rel in list_files(entry) if rel.rsplit("/", 1)[-1] not in BOOKKEEPING_FILES]


def check_metadata(key: str, metadata: Any) -> dict[str, Any]:
    """The builder's metadata as it will read back from JSON; TypeError unless a JSON-ready mapping."""
    if metadata is not None and not isinstance(metadata, Mapping):
        raise TypeError(f"builder for cache key {key!r} must return a mapping or None, "
                        f"got {type(metadata).__name__}")
    try:
        text = strict_dumps(dict(metadata or {}))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"builder for cache key {key!r} returned metadata that is not JSON "
                        f"serialisable: {exc}") from None
    # Round-trip so a fresh build hands back exactly what a later hit reads (tuples → lists).
    return json.loads(text)


def build_manifest(entry: Path, *, key: str, description: str,
                   metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """Hash every file a builder wrote into ``entry`` and return the manifest describing them."""
    plain_metadata = check_metadata(key, metadata)
    for folder, _dirs, names in os.walk(entry):
        for name in names:
            full = Path(folder, name)
            if full.is_symlink():
                raise CacheError(f"builder for cache key {key!r} left a symlink "
                                 f"{full.relative_to(entry).as_posix()!r}; write real files")
            if name in BOOKKEEPING_FILES:
                raise CacheError(f"builder for cache key {key!r} wrote {name!r}, a name the "
                                 "cache reserves for itself")
    files = {rel: {"size": (entry / rel).stat().st_size, "sha256": hash_file(entry / rel)}
             for rel in _content_files(entry)}
    return {
        "format": MANIFEST_FORMAT,
        "key": key,
        "description": description,
        "created": time.time(),
        "total_size": sum(record["size"] for record in files.values()),
        "metadata": plain_metadata,
        "files": files,
    }


def write_manifest(entry: Path, manifest: Mapping[str, Any]) -> None:
    """Write the manifest into an entry that is still private to its builder."""
    (entry / MANIFEST_NAME).write_text(strict_dumps(manifest, indent=1, sort_keys=True),
                                       encoding="utf-8")


def read_manifest(entry: Path, key: str) -> dict[str, Any]:
    """The entry's manifest, checked for shape; raises CacheError saying what is wrong."""
    path = entry / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CacheError(f"{MANIFEST_NAME} is missing (partial entry)") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CacheError(f"{MANIFEST_NAME} is unreadable: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise CacheError(f"{MANIFEST_NAME} has an unknown format")
    if manifest.get("key") != key:
        raise CacheError(f"{MANIFEST_NAME} belongs to key {manifest.get('key')!r}")
    files = manifest.get("files")
    if not isinstance(files, dict) or not all(
        isinstance(record, dict) and isinstance(record.get("size"), int)
        and isinstance(record.get("sha256"), str) for record in files.values()
    ):
        raise CacheError(f"{MANIFEST_NAME} has a malformed file list")
    return manifest


def signature(entry: Path, manifest: Mapping[str, Any]) -> Signature:
    """A cheap fingerprint of the entry's files on disk (size, times, inode), without hashing."""
    rows = []
    for rel in [MANIFEST_NAME, *sorted(manifest["files"])]:
        stat = (entry / rel).stat()
        rows.append((rel, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino))
    return tuple(rows)


@dataclass(frozen=True)
class Verified:
    """An entry's signature and the wall-clock time its contents were hashed and found good."""

    signature: Signature
    at: float

    def still_good(self, current: Signature) -> bool:
        """True when nothing was written to the files since they were hashed.

        Any write updates a file's ctime, which cannot be set back; but file times are coarse
        (milliseconds), so a write in the same tick as the last one could go unseen. Trust the
        signature only for files whose last change was well before the hashing ("racy" files
        are hashed again, as git does for its index).
        """
        newest_change_s = max(row[3] for row in current) / 1e9
        return current == self.signature and newest_change_s < self.at - RACY_WINDOW_S


def verify_entry(entry: Path, key: str, *, known_good: Verified | None = None
                 ) -> tuple[dict[str, Any], Verified]:
    """Check every file of an entry against its manifest (size, then sha256).

    Returns the manifest and a :class:`Verified` record. When ``known_good`` shows the files
    were hashed earlier in this process and not written since, hashing is skipped. Raises
    CacheError naming the first problem found.
    """
    manifest = read_manifest(entry, key)
    expected = manifest["files"]
    actual = set(_content_files(entry))
    missing = sorted(set(expected) - actual)
    if missing:
        raise CacheError(f"file {missing[0]!r} is missing")
    unexpected = sorted(actual - set(expected))
    if unexpected:
        raise CacheError(f"unexpected file {unexpected[0]!r}")
    try:
        current = signature(entry, manifest)
    except OSError as exc:
        raise CacheError(f"cannot read entry: {exc}") from None
    if known_good is not None and known_good.still_good(current):
        return manifest, known_good
    hashed_at = time.time()
    for rel, record in sorted(expected.items()):
        path = entry / rel
        size = path.stat().st_size
        if size != record["size"]:
            raise CacheError(f"file {rel!r} has size {size}, expected {record['size']}")
        if hash_file(path) != record["sha256"]:
            raise CacheError(f"file {rel!r} fails its sha256 check")
    return manifest, Verified(current, hashed_at)

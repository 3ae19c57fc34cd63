"""Where things live inside the cache folder, and creating that folder atomically.

```
.ft-cache/
  README.md  .gitignore  CACHEDIR.TAG   supporting files (the folder is never committed)
  artifacts/<key>/                      artifact directories, each with .ft-manifest.json
  json/<key>.json                       small JSON results (checksummed)
  locks/<key>.lock                      one file lock per key
  tmp/                                  builds in progress (renamed into place when done)
  trash/                                entries being removed (moved here first, then deleted)
```
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from harness.cache.keys import validate_key

CACHE_ENV = "FT_HARNESS_CACHE"
DEFAULT_DIRNAME = ".ft-cache"

SUPPORTING_FILES: dict[str, bytes] = {
    "README.md": b"# ft-harness cache\n\nTrained candidates and model outputs, addressed by a hash "
                 b"of everything that\ndetermines them. Safe to delete; inspect it with "
                 b"`ft-harness cache ls`.\n\n**Do not** commit this folder.\n",
    ".gitignore": b"# Created by ft-harness automatically.\n*\n",
    "CACHEDIR.TAG": b"Signature: 8a477f597d28d172789f06886806bc55\n"
                    b"# This file is a cache directory tag created by ft-harness.\n"
                    b"# For information about cache directory tags, see:\n"
                    b"#\thttps://bford.info/cachedir/spec.html\n",
}


def default_cache_root(rootdir: Path) -> Path:
    """``$FT_HARNESS_CACHE`` when set (relative to ``rootdir`` if relative), else ``rootdir/.ft-cache``."""
    configured = os.environ.get(CACHE_ENV, "").strip()
    if configured:
        path = Path(configured).expanduser()
        return path if path.is_absolute() else Path(rootdir) / path
    return Path(rootdir) / DEFAULT_DIRNAME


def make_cache_root(target: Path) -> None:
    """Create the cache folder with its supporting files in one rename, so no reader sees it half made.

    When two processes race, the loser's rename fails with ENOTEMPTY/EEXIST and its copy is
    simply removed.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".ft-cache-staging-", dir=target.parent))
    try:
        umask = os.umask(0o022)
        os.umask(umask)
        staging.chmod(0o777 - umask)
        for name, content in SUPPORTING_FILES.items():
            staging.joinpath(name).write_bytes(content)
        staging.rename(target)
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@dataclass(frozen=True)
class CacheLayout:
    """Paths of the cache folder's parts; creates nothing until :meth:`ensure` is called."""

    root: Path

    @property
    def artifacts(self) -> Path:
        """Artifact directories, one per key."""
        return self.root / "artifacts"

    @property
    def json(self) -> Path:
        """Small JSON results, one file per key."""
        return self.root / "json"

    @property
    def locks(self) -> Path:
        """One lock file per key."""
        return self.root / "locks"

    @property
    def tmp(self) -> Path:
        """Builds in progress, renamed into place when complete."""
        return self.root / "tmp"

    @property
    def trash(self) -> Path:
        """Entries being removed: renamed here first, then deleted."""
        return self.root / "trash"

    def artifact_dir(self, key: str) -> Path:
        """The directory of artifact ``key`` (validated, so it cannot leave the cache folder)."""
        return self.artifacts / validate_key(key)

    def json_file(self, key: str) -> Path:
        """The file of JSON entry ``key``."""
        return self.json / f"{validate_key(key)}.json"

    def lock_file(self, key: str) -> Path:
        """The lock file that serialises builds of ``key`` across processes."""
        return self.locks / f"{validate_key(key)}.lock"

    def ensure(self) -> None:
        """Create the cache folder (atomically) and its sub-folders if they are missing."""
        if not self.root.is_dir():
            make_cache_root(self.root)
        for name, content in SUPPORTING_FILES.items():  # a folder someone else made first
            path = self.root / name
            if not path.exists():
                with contextlib.suppress(OSError):
                    path.write_bytes(content)
        for folder in (self.artifacts, self.json, self.locks, self.tmp, self.trash):
            folder.mkdir(exist_ok=True)

    def discard(self, path: Path) -> None:
        """Remove an entry by first renaming it into ``trash/`` (atomic), then deleting it there.

        Readers therefore see either the whole entry or none of it, never a half-deleted one.
        """
        self.trash.mkdir(parents=True, exist_ok=True)
        doomed = self.trash / f"{path.name}-{uuid.uuid4().hex[:12]}"
        try:
            path.rename(doomed)
        except FileNotFoundError:
            return
        if doomed.is_dir():
            shutil.rmtree(doomed, ignore_errors=True)
        else:
            doomed.unlink(missing_ok=True)

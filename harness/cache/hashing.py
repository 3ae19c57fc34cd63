"""Content hashes that identify models, adapters and tokenizers by their bytes, not their paths."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

CHUNK_SIZE = 1 << 20
# The store's own bookkeeping files; they never count towards an artifact's identity.
BOOKKEEPING_FILES = frozenset({".ft-manifest.json", ".ft-last-used"})
# Fields that record where a file was written, not what it holds: PEFT stores the base model's path
# in every adapter's config, so an adapter copied or rebuilt in another cache folder would otherwise
# get another identity (the base model is identified by its own hash).
LOCATION_FIELDS = {"adapter_config.json": ("base_model_name_or_path",)}


def hash_file(path: str | os.PathLike[str], *, chunk_size: int = CHUNK_SIZE) -> str:
    """sha256 hex digest of one file's contents, read in chunks (weights may be gigabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def list_files(root: Path) -> list[str]:
    """Relative POSIX paths of every file under ``root``, sorted; symlinked files are followed."""
    found: list[str] = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in files:
            full = Path(folder, name)
            if full.is_file():
                found.append(full.relative_to(root).as_posix())
    return sorted(found)


def _selected(relative: str, include: Iterable[str] | None) -> bool:
    if relative.rsplit("/", 1)[-1] in BOOKKEEPING_FILES:
        return False
    if include is None:
        return True
    name = relative.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(relative, pattern) or fnmatch.fnmatchcase(name, pattern)
               for pattern in include)


def hash_directory(path: str | os.PathLike[str], *, include: Iterable[str] | None = None,
                   chunk_size: int = CHUNK_SIZE) -> str:
    """sha256 over the sorted relative paths and contents of the files in a directory.

    ``include`` keeps only files whose relative path or name matches one of the glob patterns
    (``["*.safetensors", "tokenizer*"]``). Two directories with the same files and bytes hash
    equal wherever they live (an adapter config's record of its base's path is left out); renaming, adding, removing or editing a file changes the hash.
    """
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a directory (cannot fingerprint it)")
    patterns = None if include is None else list(include)
    digest = hashlib.sha256(b"ft-harness-directory/1\0")
    for relative in list_files(root):
        if not _selected(relative, patterns):
            continue
        encoded = relative.encode("utf-8")
        full = root / relative
        # Length-prefixed name and size keep file boundaries unambiguous.
        digest.update(len(encoded).to_bytes(8, "big") + encoded)
        name = relative.rsplit("/", 1)[-1]
        if name in LOCATION_FIELDS:
            kept = _without_location(full, LOCATION_FIELDS[name])
            digest.update(len(kept).to_bytes(8, "big") + kept)
            continue
        digest.update(full.stat().st_size.to_bytes(8, "big"))
        with open(full, "rb") as handle:
            while chunk := handle.read(chunk_size):
                digest.update(chunk)
    return digest.hexdigest()


def _without_location(path: Path, fields: tuple[str, ...]) -> bytes:
    """A JSON config's bytes with the location ``fields`` left out (the file as is when it is no JSON object)."""
    data = path.read_bytes()
    try:
        config = json.loads(data)
    except ValueError:
        return data
    if not isinstance(config, dict):
        return data
    kept = {key: value for key, value in config.items() if key not in fields}
    return json.dumps(kept, sort_keys=True, ensure_ascii=False).encode("utf-8")

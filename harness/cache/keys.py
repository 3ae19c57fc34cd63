"""Cache keys: ``namespace-<sha256 of a canonical JSON payload>``, validated and secret-free."""

from __future__ import annotations

import hashlib
import json
import numbers
import re
from collections.abc import Mapping
from functools import cache
from importlib import metadata
from typing import Any

from harness import __version__
from harness.secrets import Secret, looks_like_secret_name, looks_like_secret_value

KEY_DIGEST_CHARS = 40
MAX_KEY_LENGTH = 200
_KEY_FORMAT = b"ft-harness-cache-key/1\0"
_NAMESPACE = re.compile(r"^[a-z0-9][a-z0-9_.]*(?:-[a-z0-9_.]+)*$")
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_VERSIONED_LIBRARIES = ("torch", "transformers", "peft", "trl", "datasets")


def validate_key(key: str) -> str:
    """Return ``key`` if it is safe as one file name inside the cache folder, else raise ValueError.

    Keys are plain names: no path separators, no ``..``, nothing absolute, nothing hidden.
    """
    if not isinstance(key, str):
        raise TypeError(f"cache key must be a string, got {type(key).__name__}")
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"invalid cache key {key!r}: must be 1 to {MAX_KEY_LENGTH} characters")
    if ".." in key or not _KEY.match(key):
        raise ValueError(
            f"invalid cache key {key!r}: use letters, digits, '.', '_' and '-' only, starting "
            "with a letter or digit (no '/', '..' or absolute paths)"
        )
    return key


def namespace_of(key: str) -> str:
    """The namespace part of a key made by :func:`cache_key` (everything before the last '-')."""
    head, sep, _ = key.rpartition("-")
    return head if sep and head else key


def _plain(value: Any, where: str) -> Any:
    """A JSON-ready copy of ``value``; refuses secrets and types without a stable encoding."""
    if isinstance(value, Secret):
        raise ValueError(f"cache key payload field {where or '<root>'!r} is a Secret; secrets never "
                         "go in a cache key (leave it out of the payload)")
    if isinstance(value, Mapping):
        plain: dict[str, Any] = {}
        for name, item in value.items():
            field = f"{where}.{name}" if where else str(name)
            if not isinstance(name, str):
                raise TypeError(f"cache key payload field {field!r}: keys must be strings, "
                                f"got {type(name).__name__}")
            if looks_like_secret_name(name):
                raise ValueError(f"cache key payload field {field!r} looks like a secret; secrets "
                                 "never go in a cache key (leave it out of the payload)")
            plain[name] = _plain(item, field)
        return plain
    if isinstance(value, (list, tuple)):
        return [_plain(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, str):
        if looks_like_secret_value(value):
            raise ValueError(f"cache key payload field {where!r} holds a value shaped like a "
                             "credential; secrets never go in a cache key")
        return value
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)  # json writes floats with repr (round-trip exact); nan → NaN
    raise TypeError(
        f"cache key payload field {where or '<root>'!r}: {type(value).__name__} has no stable "
        "encoding; pass strings, numbers, booleans, None, lists or mappings (hash files with "
        "hash_file / hash_directory)"
    )


def canonical_json(payload: Mapping[str, Any]) -> str:
    """The payload as canonical JSON: sorted keys, no whitespace, floats written by ``repr``."""
    if not isinstance(payload, Mapping):
        raise TypeError(f"cache key payload must be a mapping, got {type(payload).__name__}")
    return json.dumps(_plain(payload, ""), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False)


def cache_key(namespace: str, payload: Mapping[str, Any]) -> str:
    """``namespace-<hex>``: a stable name for everything in ``payload`` that determines an artifact.

    Equal payloads give equal keys whatever their key order; changing any field changes the
    key. Raises ValueError for a bad namespace or a payload that carries a secret.
    """
    if not isinstance(namespace, str) or not _NAMESPACE.match(namespace) or len(namespace) > 64:
        raise ValueError(f"invalid cache namespace {namespace!r}: use lower-case letters, digits, "
                         "'.', '_' and single '-' separators (at most 64 characters)")
    digest = hashlib.sha256(_KEY_FORMAT + canonical_json(payload).encode("utf-8")).hexdigest()
    return validate_key(f"{namespace}-{digest[:KEY_DIGEST_CHARS]}")


@cache
def installed_version(distribution: str) -> str | None:
    """The installed version of ``distribution`` (None if absent), read once per process: a
    metadata lookup scans every path entry, and a session asks for each version many times."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def library_versions() -> dict[str, str | None]:
    """Installed versions of the training/eval stack and the harness, for inclusion in keys.

    Read from package metadata, so nothing heavy (torch) is imported; a missing package is None.
    """
    versions = {name: installed_version(name) for name in _VERSIONED_LIBRARIES}

    versions["harness"] = installed_version("ft-harness") or __version__
    return versions

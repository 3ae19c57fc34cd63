"""Encoding of a small JSON cache entry: one header line with a sha256 of the body, then the body."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from harness.errors import CacheError
from harness.jsonio import strict_dumps

JSON_FORMAT = 1


def encode_json_entry(key: str, value: Any, *, description: str = "") -> bytes:
    """The bytes of a JSON entry; raises TypeError when ``value`` is not JSON serialisable."""
    try:
        body = strict_dumps(value, ensure_ascii=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise TypeError(f"cache value for key {key!r} is not JSON serialisable: {exc}") from None
    header = {
        "format": JSON_FORMAT,
        "key": key,
        "created": time.time(),
        "description": description,
        "size": len(body),
        "sha256": hashlib.sha256(body).hexdigest(),
    }
    return strict_dumps(header, sort_keys=True).encode("utf-8") + b"\n" + body


def read_json_header(raw: bytes, key: str) -> dict[str, Any]:
    """The header of an encoded entry, checked for shape; raises CacheError when unusable."""
    first_line, newline, _ = raw.partition(b"\n")
    try:
        header = json.loads(first_line) if newline else None
    except (UnicodeDecodeError, ValueError):
        header = None
    if not isinstance(header, dict) or header.get("format") != JSON_FORMAT:
        raise CacheError("header is unreadable")
    if header.get("key") != key:
        raise CacheError(f"entry belongs to key {header.get('key')!r}")
    if not isinstance(header.get("size"), int) or not isinstance(header.get("sha256"), str):
        raise CacheError("header lacks its checksum")
    return header


def decode_json_entry(raw: bytes, key: str) -> tuple[dict[str, Any], Any]:
    """The header and value of an encoded entry, after checking the body's size and sha256."""
    header = read_json_header(raw, key)
    body = raw.partition(b"\n")[2]
    if len(body) != header["size"]:
        raise CacheError(f"body has {len(body)} bytes, expected {header['size']} (truncated?)")
    if hashlib.sha256(body).hexdigest() != header["sha256"]:
        raise CacheError("body fails its sha256 check")
    try:
        return header, json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:  # pragma: no cover - checksum caught it
        raise CacheError(f"body is not JSON: {exc}") from None

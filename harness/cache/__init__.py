"""Content-addressed cache for trained candidates and model outputs.

Keys are ``namespace-<sha256>`` of a canonical JSON payload of everything that determines an
artifact (never secrets). Entries are written privately and renamed into place, verified by
checksum on every read (a corrupt one is reported, discarded and rebuilt), and built once
across concurrent processes thanks to one file lock per key.
"""

from harness.cache.hashing import hash_directory, hash_file
from harness.cache.keys import (
    cache_key,
    canonical_json,
    library_versions,
    namespace_of,
    validate_key,
)
from harness.cache.layout import CACHE_ENV, default_cache_root
from harness.cache.maintenance import CacheEntry, PruneResult
from harness.cache.store import CacheCorruptionWarning, CacheResult, CacheStore
from harness.cache.units import format_size, parse_duration, parse_size

__all__ = [
    "CACHE_ENV",
    "CacheCorruptionWarning",
    "CacheEntry",
    "CacheResult",
    "CacheStore",
    "PruneResult",
    "cache_key",
    "canonical_json",
    "default_cache_root",
    "format_size",
    "hash_directory",
    "hash_file",
    "library_versions",
    "namespace_of",
    "parse_duration",
    "parse_size",
    "validate_key",
]

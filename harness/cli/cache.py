"""`ft-harness cache ls | info KEY | prune`: inspect and trim the artifact cache."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from harness.cache import (
    CacheStore,
    default_cache_root,
    format_size,
    parse_duration,
    parse_size,
    validate_key,
)
from harness.cli import EXIT_HARNESS_ERROR, EXIT_OK, EXIT_USAGE
from harness.errors import CacheError
from harness.jsonio import strict_dumps


def _duration(text: str) -> Any:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _store(args: argparse.Namespace) -> CacheStore:
    root = args.cache_dir if args.cache_dir is not None else default_cache_root(Path.cwd())
    return CacheStore(root)


def _when(timestamp: float | None) -> str:
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M") if timestamp else "-"


def _ls(args: argparse.Namespace) -> int:
    store = _store(args)
    entries = store.entries()
    if args.json:
        print(strict_dumps([entry.as_dict() for entry in entries], indent=2))
        return EXIT_OK
    if not entries:
        print(f"cache is empty: {store.root}")
        return EXIT_OK
    from tabulate import tabulate

    rows = [[e.key, e.kind, format_size(e.size), _when(e.created), _when(e.last_used),
             e.description if e.readable else "(broken: pruned by `cache prune`)"]
            for e in entries]
    print(tabulate(rows, headers=["key", "kind", "size", "created", "last used", "description"]))
    total = sum(e.size for e in entries)
    print(f"\n{len(entries)} entries, {format_size(total)} in {store.root}")
    return EXIT_OK


def _info(args: argparse.Namespace) -> int:
    try:
        validate_key(args.key)
    except ValueError as exc:
        print(f"ft-harness cache info: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    store = _store(args)
    info = store.info(args.key)
    if info is None:
        raise CacheError(f"no cache entry {args.key!r} in {store.root}")
    if args.json:
        print(strict_dumps(info, indent=2))
    else:
        for name in ("key", "namespace", "kind", "status", "description", "path",
                     "created", "last_used"):
            print(f"{name + ':':<13}{info[name]}")
        print(f"{'size:':<13}{format_size(info['size'])} ({info['size']} bytes)")
        if info.get("metadata"):
            print("metadata:\n" + strict_dumps(info["metadata"], indent=2, sort_keys=True))
        for rel, record in sorted(info.get("files", {}).items()):
            print(f"  {rel}  {format_size(record['size'])}  sha256:{record['sha256'][:16]}")
    return EXIT_OK if info["status"] == "ok" else EXIT_HARNESS_ERROR


def _prune(args: argparse.Namespace) -> int:
    if args.older_than is None and args.max_size is None:
        print("ft-harness cache prune: error: give --older-than and/or --max-size",
              file=sys.stderr)
        return EXIT_USAGE
    store = _store(args)
    result = store.prune(older_than=args.older_than, max_size=args.max_size,
                         dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for entry in result.removed:
        print(f"{verb} {entry.key} ({format_size(entry.size)})")
    for entry in result.skipped_locked:
        print(f"skipped {entry.key}: in use by another process")
    print(f"{verb} {len(result.removed)} entries ({format_size(result.freed)}); "
          f"{len(result.kept)} entries left ({format_size(result.kept_size)})")
    return EXIT_OK


def register(subparsers: Any) -> None:
    """Add the ``cache`` command group to the ``ft-harness`` parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--cache-dir", type=Path, default=None, metavar="DIR",
                        help="cache folder (default: $FT_HARNESS_CACHE or ./.ft-cache)")
    parser = subparsers.add_parser(
        "cache", help="inspect and prune the artifact cache",
        description="Inspect and prune the content-addressed cache of trained candidates "
                    "and model outputs.")
    actions = parser.add_subparsers(dest="cache_action", metavar="ACTION")

    ls = actions.add_parser("ls", parents=[common], help="list cache entries")
    ls.add_argument("--json", action="store_true", help="print the listing as JSON")
    ls.set_defaults(func=_ls)

    info = actions.add_parser("info", parents=[common], help="show one entry and check it")
    info.add_argument("key", metavar="KEY", help="the entry's key, as shown by `cache ls`")
    info.add_argument("--json", action="store_true", help="print the details as JSON")
    info.set_defaults(func=_info)

    prune = actions.add_parser(
        "prune", parents=[common], help="remove old or least recently used entries",
        description="Remove entries unused for --older-than, then least recently used ones "
                    "until the cache is at most --max-size. Broken entries and abandoned "
                    "builds are always removed.")
    prune.add_argument("--older-than", type=_duration, metavar="AGE",
                       help="remove entries unused for this long (30m, 12h, 7d, 2w)")
    prune.add_argument("--max-size", type=_size, metavar="SIZE",
                       help="then shrink the cache to this size (500MB, 2GB, 1.5GiB)")
    prune.add_argument("--dry-run", action="store_true", help="only say what would be removed")
    prune.set_defaults(func=_prune)

    def _usage(_args: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return EXIT_USAGE

    parser.set_defaults(func=_usage)

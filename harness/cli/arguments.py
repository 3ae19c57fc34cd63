"""The command-line arguments every one-candidate command shares (``evaluate``, ``train``), and directory checks."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.errors import HarnessError


def positive_int(text: str) -> int:
    """An ``argparse`` type: an integer of at least 1 (argparse names the option in the error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer of at least 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer of at least 1, got {value}")
    return value


def add_candidate_arguments(parser: argparse.ArgumentParser) -> None:
    """``--spec``, ``--suite``, ``--candidate``, ``--cache-dir`` and ``--base-model``."""
    parser.add_argument("--spec", type=Path, default=Path("fixtures/candidates.toml"), help="candidate spec TOML")
    parser.add_argument("--suite", required=True, help="suite name in the spec")
    parser.add_argument("--candidate", required=True, help="candidate name in the suite")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="artifact cache (default: $FT_HARNESS_CACHE or ./.ft-cache)")
    parser.add_argument("--base-model", default=None, help="'embedded', a local directory or a hub id")


def check_dir_option(option: str, path: Path | None) -> None:
    """Refuse a directory option whose path (or a parent) is an existing file, before any work is done."""
    if path is None:
        return
    for where in (path, *path.parents):
        if where.exists():
            if not where.is_dir():
                raise HarnessError(f"{option} {path}: {where} is a file, not a directory; pass a directory")
            return

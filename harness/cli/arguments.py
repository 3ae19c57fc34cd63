"""The command-line arguments every one-candidate command shares (``evaluate``, ``train``), and directory checks."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path

from harness.errors import HarnessError
from harness.protocol import MAX_COUNT, MAX_PORT, MAX_SEED


def bounded_int(minimum: int, maximum: int) -> Callable[[str], int]:
    """An ``argparse`` type: an integer in [minimum, maximum] (argparse names the option)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer from {minimum} to {maximum}, got {text!r}") from None
        if not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(f"expected an integer from {minimum} to {maximum}, got {value}")
        return value

    return parse


def positive_int(text: str) -> int:
    """An ``argparse`` type: an integer of at least 1 and at most :data:`MAX_COUNT`."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer of at least 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer of at least 1, got {value}")
    if value > MAX_COUNT:
        raise argparse.ArgumentTypeError(f"expected an integer of at most {MAX_COUNT:,}, got {value}")
    return value


port = bounded_int(0, MAX_PORT)
port.__doc__ = "An ``argparse`` type: a TCP port, 0 (pick a free one) to 65535."
seed = bounded_int(0, MAX_SEED)
seed.__doc__ = "An ``argparse`` type: a seed in [0, 2**32)."


def _finite(text: str, expected: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text}")
    return value


def positive_number(text: str) -> float:
    """An ``argparse`` type: a finite number above 0 (``nan``, ``inf`` and ``-1`` are refused)."""
    value = _finite(text, "a finite number above 0")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a finite number above 0, got {text}")
    return value


def non_negative_number(text: str) -> float:
    """An ``argparse`` type: a finite number of at least 0."""
    value = _finite(text, "a finite number of at least 0")
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a finite number of at least 0, got {text}")
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

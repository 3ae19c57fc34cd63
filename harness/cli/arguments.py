"""The command-line arguments every one-candidate command shares (``evaluate``, ``train``)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_candidate_arguments(parser: argparse.ArgumentParser) -> None:
    """``--spec``, ``--suite``, ``--candidate``, ``--cache-dir`` and ``--base-model``."""
    parser.add_argument("--spec", type=Path, default=Path("fixtures/candidates.toml"), help="candidate spec TOML")
    parser.add_argument("--suite", required=True, help="suite name in the spec")
    parser.add_argument("--candidate", required=True, help="candidate name in the suite")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="artifact cache (default: $FT_HARNESS_CACHE or ./.ft-cache)")
    parser.add_argument("--base-model", default=None, help="'embedded', a local directory or a hub id")

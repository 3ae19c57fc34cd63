"""``ft-harness merge``: fold a LoRA adapter into its base model for deployment."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from harness.backends.hf.loaded import merge_adapter
from harness.cli import EXIT_FINDINGS, EXIT_OK
from harness.data import load_split
from harness.errors import HarnessError


def register(subparsers: Any) -> None:
    """Add ``merge`` to the top-level parser."""
    parser = subparsers.add_parser(
        "merge", help="merge a LoRA adapter into its base model (for deployment)",
        description="Load the adapter over its base, merge the LoRA weights into the base "
                    "(merge_and_unload), save model and tokenizer to OUT_DIR, then reload the merged "
                    "model and check its next-token predictions equal the adapter's.")
    parser.add_argument("adapter_dir", type=Path, metavar="ADAPTER_DIR", help="a PEFT LoRA adapter directory")
    parser.add_argument("out_dir", type=Path, metavar="OUT_DIR", help="where the merged model goes")
    parser.add_argument("--base", default=None, metavar="BASE",
                        help="base model directory or hub id (default: the adapter's base_model_name_or_path)")
    parser.add_argument("--check-data", type=Path, default=None, metavar="FILE",
                        help="a chat dataset whose first 16 prompts check the merge (default: built-in probes)")
    parser.add_argument("--force", action="store_true", help="write into OUT_DIR even if it is not empty")
    parser.set_defaults(func=run_merge)


def _probes(path: Path | None) -> list[list[dict[str, str]]] | None:
    if path is None:
        return None

    split = load_split(path, name="check")
    return [list(ex.prompt) for ex in split.examples[:16]]


def run_merge(args: argparse.Namespace) -> int:
    """Merge, save and verify; exit 1 when the merged model's predictions differ."""

    if args.out_dir.exists() and any(args.out_dir.iterdir()) and not args.force:
        raise HarnessError(f"{args.out_dir} is not empty; choose another OUT_DIR or pass --force")
    report = merge_adapter(args.adapter_dir, args.out_dir, base=args.base, probes=_probes(args.check_data))
    print(f"ft-harness merge: {report.summary()}", flush=True)
    return EXIT_OK if report.same_predictions else EXIT_FINDINGS

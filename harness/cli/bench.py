"""``ft-harness bench``: run the benchmarks in ``bench/`` and print one JSON object."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help="run the benchmarks and print their ratios as JSON")
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from bench.__main__ import main

    return main(list(args.names))

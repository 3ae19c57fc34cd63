"""`ft-harness human export | import`: people's labels, round trip.

``export`` writes a blind A/B sheet of two candidates' outputs from a run's
``outputs/<suite>/<candidate>.jsonl`` (sides randomised per item with ``--seed``; CSV, a Label Studio
import JSON and its labelling config) and, apart, the key saying which side is which. ``import``
reads the filled sheet (CSV, or a Label Studio JSON export) with that key, checks every row (unknown
ids, repeated rows, values other than left / right / tie: exit 1, each named by file and line, nothing
stored) and adds the labels to the suite's label store (``[suites.<name>.human] labels``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from harness.cli import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE
from harness.data.labels import (
    Pair,
    make_sheet,
    read_key,
    read_sheet,
    read_store,
    write_sheet,
    write_store,
)
from harness.errors import DatasetError
from harness.runner.outputs import outputs_path, read_outputs


def register(subparsers: Any) -> None:
    """Add the ``human`` command group to the top-level parser."""
    group = subparsers.add_parser("human", help="export a blind A/B sheet for people, import their labels",
                                  description="People's labels, round trip: export a blind sheet, import it.")
    commands = group.add_subparsers(dest="human_command", metavar="SUBCOMMAND")
    group.set_defaults(func=lambda args: _usage(group))

    export = commands.add_parser("export", help="write a blind A/B sheet of two candidates' outputs",
                                 description="Write <out>/<suite>-<a>-vs-<b>.csv, .labelstudio.json, "
                                             ".labelstudio.xml and (apart) .key.json from a run's outputs.")
    export.add_argument("--suite", required=True)
    export.add_argument("--a", required=True, metavar="CANDIDATE", help="first candidate")
    export.add_argument("--b", required=True, metavar="CANDIDATE", help="second candidate")
    export.add_argument("--run", default="reports", help="the run's reports folder (default: reports)")
    export.add_argument("--out", default="human", help="where the sheet and its key go (default: human)")
    export.add_argument("--seed", type=int, default=0, help="seed of the side randomisation (default: 0)")
    export.set_defaults(func=run_export)

    imported = commands.add_parser("import", help="read a filled sheet into the label store",
                                   description="Validate a filled sheet (CSV or Label Studio JSON export) "
                                               "against its key and add its labels to the store.")
    imported.add_argument("sheet", help="the filled sheet (.csv or a Label Studio .json export)")
    imported.add_argument("--key", required=True, help="the sheet's .key.json (from `human export`)")
    imported.add_argument("--store", required=True,
                          help="the label store ([suites.<name>.human] labels in the spec)")
    imported.set_defaults(func=run_import)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def run_export(args: argparse.Namespace) -> int:
    """Write the sheet and its key; exit 2 when the two candidates are the same."""

    if args.a == args.b:
        print("ft-harness human export: --a and --b name the same candidate", file=sys.stderr)
        return EXIT_USAGE
    root = Path(args.run) / "outputs"
    rows = {name: {str(r["id"]): r for r in read_outputs(outputs_path(root, args.suite, name))}
            for name in (args.a, args.b)}
    ids = [i for i in rows[args.a] if i in rows[args.b]]
    pairs = [Pair(i, str(rows[args.a][i].get("input", "")), rows[args.a][i]["prediction"],
                  rows[args.b][i]["prediction"]) for i in ids]
    sheet, key = make_sheet(args.suite, args.a, args.b, pairs, seed=args.seed)
    written = write_sheet(sheet, key, Path(args.out), f"{args.suite}-{args.a}-vs-{args.b}")
    print(f"{len(sheet)} items; sheet {written[0]}, Label Studio {written[1]} (config {written[2]}); "
          f"key {written[3]} (keep it from the people labelling)")
    return EXIT_OK


def run_import(args: argparse.Namespace) -> int:
    """Add the sheet's labels to the store; exit 1 (nothing stored) when any row is wrong."""

    key = read_key(Path(args.key))
    try:
        labels, blank = read_sheet(Path(args.sheet), key)
    except DatasetError as exc:
        if not exc.problems:
            raise
        print(f"ft-harness human import: {exc}", file=sys.stderr)
        return EXIT_FINDINGS
    store = Path(args.store)
    write_store(store, [*read_store(store), *labels])
    print(f"{len(labels)} label(s) of {key['suite']}: {key['a']} vs {key['b']} stored in {store}"
          + (f"; {blank} row(s) left blank" if blank else ""))
    return EXIT_OK

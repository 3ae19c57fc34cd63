"""`ft-harness data validate | lint | convert`: check and convert dataset files.

Messages name the file, the line (row for CSV / Parquet) and the field, e.g.
``train.jsonl:12: field 'messages[1].role': unrecognised role 'bot' (expected ...)``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from harness.cli.synth import add_synth_parser
from harness.data.convert import convert_file
from harness.data.findings import render_findings
from harness.data.fingerprint import short_fingerprint
from harness.data.lint import lint_splits
from harness.data.loading import load_split
from harness.data.tokens import MAX_TOKENS_PER_EXAMPLE, load_tokenizer
from harness.data.validate import validate_file
from harness.errors import DatasetError, HarnessError
from harness.jsonio import strict_dumps
from harness.kinds import load_spec

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_UNREADABLE = 3  # harness error: an input file cannot be read at all
_UNREADABLE = ("missing_file", "unreadable")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def register(subparsers: Any) -> None:
    """Add the ``data`` command group to the top-level parser."""
    data = subparsers.add_parser("data", help="validate, lint and convert dataset files",
                                 description="Validate, lint and convert dataset files.")
    commands = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    data.set_defaults(func=lambda args: _usage(data))

    validate = commands.add_parser(
        "validate", help="check files against the OpenAI chat format and the harness's rules",
        description="Report every error and warning with file, line and field. Exit 0 when "
                    "clean or only warnings, 1 on errors, 2 on usage errors.")
    validate.add_argument("files", nargs="+", metavar="FILE")
    validate.add_argument("--json", action="store_true", help="print a JSON report")
    validate.add_argument("--max-tokens", type=_positive_int, default=None, metavar="N",
                          help="per-example token limit (default 16385, OpenAI chat models)")
    validate.add_argument("--format", default=None,
                          choices=("chat", "instruction", "prompt_completion", "text"),
                          help="record format (default: detected per record)")
    validate.add_argument("--tokenizer", default=None, metavar="PATH",
                          help="count tokens exactly with this Hugging Face tokenizer "
                               "(default: ~4 characters per token estimate)")
    validate.set_defaults(func=run_validate)

    lint = commands.add_parser(
        "lint", help="quality lint: duplicates, leakage, labels, lengths, sizes",
        description="Quality warnings (errors with --strict) for a training file and an "
                    "optional eval file.")
    lint.add_argument("train", metavar="TRAIN", nargs="?", default=None,
                      help="training file (default with --spec and --suite: the suite's train split)")
    lint.add_argument("--eval", dest="eval_path", default=None, metavar="EVAL")
    lint.add_argument("--task", choices=("classification", "generation", "complex"),
                      default=None, help="default: classification when every record has a "
                                         "label, else generation")
    lint.add_argument("--strict", action="store_true", help="treat warnings as errors")
    lint.add_argument("--tokenizer", default=None, metavar="PATH",
                      help="the candidate's tokenizer: exact lengths with its chat template")
    lint.add_argument("--max-length", type=_positive_int, default=None, metavar="N",
                      help="the candidate's maximum sequence length in tokens")
    lint.add_argument("--system", default=None, help="system prompt for records without one")
    lint.add_argument("--json", action="store_true", help="print a JSON report")
    lint.add_argument("--spec", default=None, metavar="SPEC",
                      help="candidate spec: with --suite, lint that suite's train / eval splits (unless "
                           "given) with its task, and size its slices")
    lint.add_argument("--suite", default=None, metavar="NAME", help="suite of --spec to lint")
    lint.set_defaults(func=run_lint)

    convert = commands.add_parser(
        "convert", help="convert between chat and instruction form",
        description="Convert IN to OUT (type by suffix: .jsonl, .json, .csv, .parquet).")
    convert.add_argument("in_path", metavar="IN")
    convert.add_argument("out_path", metavar="OUT")
    convert.add_argument("--to", required=True, choices=("chat", "instruction"))
    convert.add_argument("--system", default=None,
                         help="system prompt added to conversations that have none")
    convert.set_defaults(func=run_convert)


    add_synth_parser(commands)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _tokenizer(path: str | None) -> Any:
    if path is None:
        return None

    try:
        return load_tokenizer(path)
    except Exception as exc:  # any loader failure becomes one clear message
        raise HarnessError(f"cannot load tokenizer from {path!r}: {type(exc).__name__}: "
                           f"{str(exc).splitlines()[0] if str(exc) else ''}") from None


def run_validate(args: argparse.Namespace) -> int:
    """Validate each file; print every finding; exit 3 if a file cannot be read, 1 if any has errors."""

    tokenizer = _tokenizer(args.tokenizer)
    reports = [validate_file(path, format=args.format, count_tokens=tokenizer,
                             max_tokens=args.max_tokens or MAX_TOKENS_PER_EXAMPLE)
               for path in args.files]
    if args.json:
        print(strict_dumps({"ok": all(r.ok for r in reports),
                          "files": [r.as_dict() for r in reports]}, indent=2))
    else:
        for report in reports:
            print("\n".join(report.render()))
    if any(f.code in _UNREADABLE for r in reports for f in r.errors):
        return EXIT_UNREADABLE  # missing, a directory, not a regular file, no access
    return EXIT_OK if all(r.ok for r in reports) else EXIT_FINDINGS


def run_lint(args: argparse.Namespace) -> int:
    """Load train (and eval), run the quality lint, print a readable summary."""

    if bool(args.spec) != bool(args.suite):
        print("ft-harness data lint: error: --spec and --suite go together", file=sys.stderr)
        return EXIT_USAGE
    suite = None
    if args.spec:

        suite = load_spec(args.spec).suite(args.suite)
        args.train = args.train or str(suite.train or suite.eval)
        args.eval_path = args.eval_path or (str(suite.eval) if suite.train else None)
        args.task = args.task or suite.task
        args.system = args.system or suite.system
    if args.train is None:
        print("ft-harness data lint: error: give TRAIN, or --spec S --suite NAME", file=sys.stderr)
        return EXIT_USAGE
    tokenizer = _tokenizer(args.tokenizer)
    task = args.task
    try:
        train = load_split(args.train, name="train", system=args.system, task=task)
        evaluation = (load_split(args.eval_path, name="eval", system=args.system, task=task)
                      if args.eval_path else None)
    except DatasetError as exc:
        print(f"ft-harness: {exc}", file=sys.stderr)
        return EXIT_FINDINGS
    slices: tuple[Any, ...] = suite.slices if suite is not None else ()
    labels: tuple[str, ...] = suite.labels if suite is not None else ()
    report = lint_splits(train, evaluation, task=task, strict=args.strict,
                         tokenizer=tokenizer, max_length=args.max_length, slices=slices,
                         slice_labels=labels)
    if args.json:
        print(strict_dumps(_lint_dict(report), indent=2))
    else:
        print(render_lint(report))
    return EXIT_FINDINGS if report.errors else EXIT_OK


def _lint_dict(report: Any) -> dict[str, Any]:
    return {
        "train": report.train_path, "eval": report.eval_path, "task": report.task,
        "n_train": report.n_train, "n_eval": report.n_eval,
        "fingerprints": report.fingerprints,
        "token_counts": "exact" if report.counts_exact else "estimate",
        "token_lengths": report.token_lengths, "labels": report.labels,
        "truncation": report.truncation.as_dict() if report.truncation else None,
        "slices": report.slices,
        "errors": [f.as_dict() for f in report.errors],
        "warnings": [f.as_dict() for f in report.warnings],
    }


def render_lint(report: Any) -> str:
    """The readable lint summary: counts, token percentiles, label table, findings."""
    from tabulate import tabulate


    out = [f"train: {report.train_path}: {report.n_train} examples "
           f"(fingerprint {short_fingerprint(report.fingerprints['train'])})"]
    if report.eval_path:
        out.append(f"eval:  {report.eval_path}: {report.n_eval} examples "
                   f"(fingerprint {short_fingerprint(report.fingerprints['eval'])})")
    out.append(f"task: {report.task}")
    out.append(f"\ntoken lengths per example ({report.counter}):")
    rows = [[name, *(f"{v:g}" for v in stats.values())]
            for name, stats in report.token_lengths.items() if stats]
    if rows:
        headers = ["split", *next(iter(s for s in report.token_lengths.values() if s))]
        out.append(tabulate(rows, headers=headers, tablefmt="github"))
    if report.labels:
        out.append("\nlabels:")
        headers = ["label", "train", "train %"] + (["eval", "eval %"] if report.eval_path else [])
        table = [[r["label"], r["train"], f"{100 * r['train_share']:.1f}"]
                 + ([r["eval"], f"{100 * r['eval_share']:.1f}"] if report.eval_path else [])
                 for r in report.labels]
        out.append(tabulate(table, headers=headers, tablefmt="github"))
    if report.slices:
        out.append(f"\nslices ({'eval' if report.eval_path else 'train'}):")
        out.append(tabulate([[name, n] for name, n in report.slices.items()], headers=["slice", "examples"],
                            tablefmt="github"))
    if report.truncation is not None:
        out.append(f"\ntruncation: {report.truncation.summary()}")
    out.append("")
    out += render_findings(report.errors)
    out += render_findings(report.warnings)
    out.append(f"{len(report.errors)} errors, {len(report.warnings)} warnings")
    return "\n".join(out)


def run_convert(args: argparse.Namespace) -> int:
    """Convert IN to OUT; invalid input raises DatasetError (printed with file and line)."""

    try:
        result = convert_file(args.in_path, args.out_path, to=args.to, system=args.system)
    except DatasetError as exc:
        print(f"ft-harness: {exc}", file=sys.stderr)
        return EXIT_FINDINGS
    sources = ", ".join(f"{n} {fmt}" for fmt, n in sorted(result.source_formats.items()))
    print(f"wrote {result.n_records} {result.target} records to {result.out_path} "
          f"(from {sources})")
    return EXIT_OK

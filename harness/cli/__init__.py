"""`ft-harness` command line: one subcommand group per module in this package.

Exit codes (documented in the README and in ``ft-harness --help``):
  0  success (warnings allowed)
  1  the command ran and found problems (validation errors, regressions)
  2  usage error (bad flags or arguments)
  3  harness error (unreadable input, failed job, corrupt artifact)
  130 interrupted
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Sequence

from harness import __version__, interrupts
from harness.errors import HarnessError

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_HARNESS_ERROR = 3
EXIT_INTERRUPTED = 130

# Each module exposes ``register(subparsers)``; the subcommand's handler is stored as
# ``func`` on the parsed namespace and returns an exit code.
_SUBCOMMAND_MODULES = ("data", "cache", "serve", "baseline", "rescore", "bench", "merge", "evaluate", "plan", "human")

EPILOG = """exit codes: 0 success, 1 problems found (validation errors, regressions),
2 usage error, 3 harness error (unreadable input, failed job), 130 interrupted"""


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every available subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="ft-harness",
        description="Evaluate, compare and gate fine-tuned LLMs.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )

    parser.add_argument("--version", action="version", version=f"ft-harness {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _SUBCOMMAND_MODULES:
        module_name = f"harness.cli.{name}"
        if importlib.util.find_spec(module_name) is None:
            continue
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns (and exits with) a documented code. Interrupted
    as the program (``argv`` not given), it exits 130 at once, skipping the interpreter's teardown."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.func(args))
    except HarnessError as exc:
        print(f"ft-harness: error: {exc}", file=sys.stderr)
        return EXIT_HARNESS_ERROR
    except KeyboardInterrupt:
        print("ft-harness: interrupted", file=sys.stderr)
        if argv is None:  # the program itself (not a call from Python code): leave at once
            interrupts.exit_now(EXIT_INTERRUPTED)
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

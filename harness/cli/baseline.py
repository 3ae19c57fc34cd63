"""`ft-harness baseline accept | show`: review and accept a run's results as the gate's baseline.

``accept`` reads the last run's ``reports/results.json`` (the run state under its ``state``
key) and writes its results into ``reports/baseline.json``, refusing entries measured on a
changed eval set unless ``--force``, refusing a run that did not complete (interrupted,
tests not run), a run with regressions (each named with its numbers) and a run with other failed
tests (harness errors, failed checks, test errors) unless ``--force``. ``show`` prints what the baseline holds.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from harness.cli import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE
from harness.fmt import fmt_int, fmt_metric
from harness.gate import BaselineRefused, failing_records, load_baseline, update_baseline
from harness.gate.collateral import collateral_failing, collateral_line
from harness.gate.failure import record_line
from harness.report import read_results
from harness.report.tables import markdown_table

DEFAULT_RESULTS = "reports/results.json"
DEFAULT_BASELINE = "reports/baseline.json"


def register(subparsers: Any) -> None:
    """Add the ``baseline`` command group to the top-level parser."""
    group = subparsers.add_parser("baseline", help="accept or show the regression-gate baseline",
                                  description="Accept a run's results as the baseline, or show it.")
    commands = group.add_subparsers(dest="baseline_command", metavar="SUBCOMMAND")
    group.set_defaults(func=lambda args: _usage(group))

    accept = commands.add_parser(
        "accept", help="write the last run's results into the baseline",
        description="Accept the results recorded in results.json into the baseline file. Entries "
                    "whose eval set changed, a run with regressions and a run whose tests failed "
                    "(harness error, failed check, test error) are refused (exit 1, nothing written) "
                    "unless --force; a run that did not complete is refused (exit 1).")
    accept.add_argument("--suite", action="append", default=None, metavar="S",
                        help="accept only this suite (repeatable; default: every suite in the run)")
    accept.add_argument("--results", default=DEFAULT_RESULTS, help=f"run results (default: {DEFAULT_RESULTS})")
    accept.add_argument("--baseline", default=DEFAULT_BASELINE, help=f"baseline file (default: {DEFAULT_BASELINE})")
    accept.add_argument("--force", action="store_true",
                        help="overwrite entries even when their eval-set fingerprint changed, and accept "
                             "a run with regressions or failed tests")
    accept.set_defaults(func=run_accept)

    show = commands.add_parser("show", help="print the baseline's entries and metrics",
                               description="Print every accepted suite / candidate / metric.")
    show.add_argument("--baseline", default=DEFAULT_BASELINE, help=f"baseline file (default: {DEFAULT_BASELINE})")
    show.add_argument("--suite", action="append", default=None, metavar="S", help="only this suite (repeatable)")
    show.set_defaults(func=run_show)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def run_accept(args: argparse.Namespace) -> int:
    """Accept results.json into the baseline; exit 1 when an entry was refused."""

    state = read_results(args.results)
    missing = sorted(set(args.suite or ()) - set(state.suites()))
    if missing:
        print(f"ft-harness baseline accept: error: --suite {', '.join(missing)}: no results in {args.results} "
              f"(suites with results: {', '.join(state.suites()) or 'none'})", file=sys.stderr)
        return EXIT_USAGE
    incomplete = state.run_info.get("incomplete")
    if incomplete:
        print(f"ft-harness: refused to update {args.baseline} (nothing was written): {args.results} "
              f"is from a run that did not complete ({incomplete}); rerun the suites to the end first.",
              file=sys.stderr)
        return EXIT_FINDINGS
    failed = sorted((p for p in state.problems if p.category != "regression"), key=lambda p: p.nodeid)
    if failed and not args.force:
        lines = "\n  ".join(f"[{p.category}] {p.nodeid}: {p.message[:160]}" for p in failed)
        print(f"ft-harness: refused to update {args.baseline} (nothing was written): {args.results} is from a "
              f"run with {len(failed)} failed test(s) that are not regressions:\n  {lines}\n"
              "Fix them and rerun, or pass --force to accept the run anyway.", file=sys.stderr)
        return EXIT_FINDINGS
    regressions = _regressions(state, args.suite)
    if regressions and not args.force:
        lines = "\n  ".join(regressions)
        print(f"ft-harness: refused to update {args.baseline} (nothing was written): {args.results} is from a "
              f"run with {len(regressions)} regression(s):\n  {lines}\n"
              "Accepting it would make the regressed values the new baseline. If the drop is intended, "
              "pass --force.", file=sys.stderr)
        return EXIT_FINDINGS
    try:
        report = update_baseline(args.baseline, state, suites=args.suite, force=args.force)
    except BaselineRefused as exc:
        lines = "\n  ".join(exc.refused)
        print(f"ft-harness: refused to update {args.baseline} (nothing was written):\n  {lines}\n"
              "If the new eval set is intended, pass --force.", file=sys.stderr)
        return EXIT_FINDINGS
    print(report)
    return EXIT_OK


def _regressions(state: Any, suites: list[str] | None) -> list[str]:
    """Every gated metric and collateral check of the run that failed, one line each with its numbers."""

    records = failing_records([g for g in state.gates if not suites or g.suite in suites])
    collateral = collateral_failing([c for c in state.collateral if not suites or c.suite in suites])
    if records or collateral:
        return [record_line(r) for r in records] + [collateral_line(c) for c in collateral]
    if suites:  # a failed test names no suite; gate records do
        return []
    return [f"{p.nodeid}: {p.message.splitlines()[0][:200]}" for p in state.problems if p.category == "regression"]


def run_show(args: argparse.Namespace) -> int:
    """Print one row per accepted metric."""

    baseline = load_baseline(args.baseline)
    if baseline.note:
        print(baseline.note)
        return EXIT_OK
    rows = []
    for (suite, candidate), entry in sorted(baseline.entries.items()):
        if args.suite and suite not in args.suite:
            continue
        for metric, stored in sorted(entry.metrics.items()):
            rows.append([suite, candidate, metric, fmt_metric(stored.value, metric), fmt_int(stored.n),
                         "yes" if stored.scores is not None else "no", entry.split_fingerprint[:12],
                         entry.model_fingerprint[:12], entry.date])
        for key, check in sorted((entry.collateral or {}).items()):
            rows.append([suite, candidate, f"collateral {key}", fmt_metric(check.value, key.partition("/")[2]),
                         fmt_int(check.n), "yes", check.set_fingerprint[:12], entry.model_fingerprint[:12],
                         entry.date])
    headers = ["suite", "candidate", "metric", "value", "n", "per-example", "eval set", "model", "accepted"]
    print(f"{baseline.path}:\n{markdown_table(headers, rows)}")
    return EXIT_OK

"""``ft-harness plan --suite S``: how many eval examples a non-inferiority verdict needs.

Reads the rates the last run observed against the baseline (``reports/results.json``: per candidate
and gated metric, the discordance of 0/1 scores or the SD of the paired differences, and the
tolerance) or takes them on the command line (``--discordance`` / ``--sd`` with ``--tolerance``),
and prints the eval-set size at which an unchanged candidate clears the tolerance with ``--power``
(:mod:`harness.stats.planning`, the same tests the gate runs).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from harness.cli import EXIT_OK, EXIT_USAGE
from harness.fmt import fmt_metric
from harness.report import read_results
from harness.report.tables import markdown_table
from harness.stats.planning import (
    examples_for_binary,
    examples_for_bounded,
    examples_for_corpus,
    examples_for_mean,
)

DEFAULT_RESULTS = Path("reports/results.json")


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number strictly between 0 and 1, got {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number strictly between 0 and 1, got {value}")
    return value


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {value}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "plan", help="eval-set size a non-inferiority verdict needs (from the last run or given rates)",
        description="Print the number of paired eval examples at which an unchanged candidate clears the "
                    "tolerance with the given power, per candidate and gated metric of SUITE, at the "
                    "discordance (0/1 scores) or SD of the paired differences the last run observed "
                    "against the baseline (--results), or at rates given with --discordance / --sd. "
                    "Exit 0, 2 on usage errors, 3 on an unreadable results file.")
    parser.add_argument("--suite", required=True, help="suite name")
    parser.add_argument("--metric", default=None, help="only this gated metric")
    parser.add_argument("--tolerance", type=_rate, default=None,
                        help="allowed drop in the metric's own units (default: the run's tolerance)")
    parser.add_argument("--power", type=_probability, default=0.8, help="target power (default 0.8)")
    parser.add_argument("--alpha", type=_probability, default=None,
                        help="one-sided level (default: the run's gate alpha, else 0.05)")
    rates = parser.add_mutually_exclusive_group()
    rates.add_argument("--discordance", type=_rate, default=None,
                       help="share of examples whose 0/1 score changes (instead of the last run's)")
    rates.add_argument("--sd", type=_rate, default=None,
                       help="SD of the paired per-example differences (instead of the last run's)")
    parser.add_argument("--range", dest="score_range", type=_rate, default=None,
                        help="with --sd: the width of the scores' range (100 for ROUGE, 1 for 0-1 scores), "
                             "so the plan reads the betting bound the gate uses for bounded scores")
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS,
                        help=f"the run's results.json (default {DEFAULT_RESULTS})")
    parser.set_defaults(func=_run)


def _needed(kind: str, rate: float, tolerance: float, alpha: float, power: float, scale: float,
            ratio: float | None = None) -> float:

    if kind == "binary":
        return examples_for_binary(rate, tolerance, alpha=alpha, power=power)
    if kind == "corpus":
        return examples_for_corpus(rate, scale, tolerance, alpha=alpha, power=power)
    if kind == "bounded":
        return examples_for_bounded(rate, scale, tolerance, alpha=alpha, power=power, ratio=ratio)
    return examples_for_mean(rate, tolerance, alpha=alpha, power=power)


def _words(needed: float) -> str:
    if math.isnan(needed):
        return "unknown"
    return "none suffices" if math.isinf(needed) else f"{int(needed):,}"


def _run(args: argparse.Namespace) -> int:

    alpha = args.alpha if args.alpha is not None else 0.05
    if args.discordance is not None or args.sd is not None:
        if args.tolerance is None:
            print("ft-harness plan: error: --tolerance is required with --discordance / --sd", file=sys.stderr)
            return EXIT_USAGE
        if args.discordance is not None and args.discordance > 1:
            print(f"ft-harness plan: error: --discordance must be at most 1, got {args.discordance}", file=sys.stderr)
            return EXIT_USAGE
        if args.score_range is not None and args.sd is None:
            print("ft-harness plan: error: --range goes with --sd (0/1 scores need no range)", file=sys.stderr)
            return EXIT_USAGE
        kind, rate = (("binary", args.discordance) if args.discordance is not None
                      else ("bounded", args.sd) if args.score_range is not None else ("mean", args.sd))
        scale = args.score_range if args.score_range is not None else math.nan
        needed = _needed(kind, rate, args.tolerance, alpha, args.power, scale)
        what = (f"discordance {rate:g}" if kind == "binary" else f"SD of the differences {rate:g}"
                + (f" (scores in a range of {scale:g})" if kind == "bounded" else ""))
        print(f"{args.suite}: {_words(needed)} paired examples for an unchanged candidate at {what} to clear "
              f"a tolerance of {args.tolerance:g} with {args.power:.0%} power (one-sided alpha {alpha:g})")
        return EXIT_OK
    return _from_results(args)


def _from_results(args: argparse.Namespace) -> int:

    state = read_results(args.results)
    records = [g for g in state.gates if g.suite == args.suite and (args.metric is None or g.metric == args.metric)
               and "spread" in g.details]
    if not records:
        gated = sorted({g.suite for g in state.gates})
        print(f"ft-harness plan: error: --suite {args.suite}{f' --metric {args.metric}' if args.metric else ''}: "
              f"no gated metric with observed rates in {args.results} (suites gated there: "
              f"{', '.join(gated) or 'none'}); rerun the suites against a baseline, or give --discordance / --sd "
              "with --tolerance", file=sys.stderr)
        return EXIT_USAGE
    rows = []
    for record in records:
        d = record.details
        method = str(d.get("method", ""))
        kind = ("binary" if method.startswith("Tango") else "corpus" if "corpus" in method
                else "bounded" if method.startswith("betting") else "mean")
        tolerance = args.tolerance if args.tolerance is not None else float(d["allowed_drop"])
        alpha = args.alpha if args.alpha is not None else float(d.get("alpha", 0.05))
        rate = float(d["spread"])
        scale = float(d["scale"]) if d.get("scale") is not None else math.nan
        ratio = float(d["width_ratio"]) if d.get("width_ratio") is not None else None
        needed = _needed(kind, rate, tolerance, alpha, args.power, scale, ratio)
        shown = {"binary": f"discordance {rate:.3g}", "mean": f"SD {rate:.3g}",
                 "bounded": f"SD {rate:.3g}, range {scale:.3g}"}.get(
            kind, f"linearised SD {rate:.3g}, scale {scale:.3g}")
        rows.append([record.candidate, record.metric, record.verdict, str(d["n_paired"]), shown,
                     fmt_metric(tolerance, record.metric), fmt_metric(d.get("mde"), record.metric), _words(needed)])
    headers = ["candidate", "metric", "verdict", "n now", "observed", "tolerance", "MDE now", "examples needed"]
    print(f"{args.suite}: paired examples at which an unchanged candidate clears the tolerance with "
          f"{args.power:.0%} power (rates observed against the baseline, {args.results}):")
    print(markdown_table(headers, rows))
    return EXIT_OK

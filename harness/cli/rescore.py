"""``ft-harness rescore RUN_DIR``: recompute metrics, comparisons and verdicts from saved outputs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.cli import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE
from harness.cli.arguments import check_dir_option
from harness.gate.collateral import collateral_line
from harness.report import write_reports
from harness.rescore import rescore_run


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "rescore", help="re-score a saved run from its per-example outputs (no model is loaded)",
        description="Recompute metrics, A/B comparisons and gate verdicts of a run from "
                    "RUN_DIR/outputs/<suite>/<candidate>.jsonl (lines with id, reference, prediction). "
                    "Gates against --baseline, else RUN_DIR/baseline.json, else the baseline the run "
                    "recorded. Collateral checks are re-scored from their stored replies (agreement, refusals); "
                    "bits per byte and calibration need the model, so their recorded per-item scores are "
                    "re-gated and each line says so. Exit 0 when the gate passes (or nothing was gated), 1 when "
                    "a gated metric or collateral check fails, 3 on unreadable input or a gated run whose baseline is missing.")
    parser.add_argument("run_dir", type=Path, help="the reports folder of a run (holds results.json and outputs/)")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="baseline to gate against (default: RUN_DIR/baseline.json when present, "
                             "else the one the run was gated against)")
    parser.add_argument("--spec", type=Path, default=None,
                        help="candidate spec TOML for gate settings (default: the run's own, when present)")
    parser.add_argument("--out", type=Path, default=None, help="where to write the re-scored reports "
                        "(default: RUN_DIR/rescored)")
    parser.add_argument("--task", choices=["classification", "generation"], default=None,
                        help="task of outputs that come without results.json")
    parser.add_argument("--labels", default=None, help="comma-separated label set for classification outputs")
    parser.add_argument("--strict", action="store_true", help="fail metrics with no or a non-comparable baseline")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:

    check_dir_option("--out", args.out)
    if args.out is not None and args.out.resolve() == args.run_dir.resolve():
        print(f"ft-harness rescore: error: --out {args.out} is the run folder itself; the re-scored "
              "reports would replace the run's own results.json and reports (choose another folder, "
              "default RUN_DIR/rescored)", file=sys.stderr)
        return EXIT_USAGE
    labels = [x.strip() for x in args.labels.split(",") if x.strip()] if args.labels else None
    outcome = rescore_run(args.run_dir, baseline_path=args.baseline, spec_path=args.spec, task=args.task,
                          labels=labels, strict=args.strict)
    out = args.out or args.run_dir / "rescored"
    write_reports(outcome.state, out)
    for result in outcome.state.results:
        shown = ", ".join(f"{k}={v:.6g}" for k, v in sorted(result.metrics.items()))
        print(f"{result.suite}/{result.candidate} (n={result.n}): {shown}")
    if outcome.baseline is not None:
        print(f"gated against {outcome.baseline}")
    for record in outcome.state.gates:
        print(f"gate {record.suite}/{record.candidate} {record.metric}: {record.verdict}")
    for c in outcome.state.collateral:
        print(f"collateral {collateral_line(c)}: {c.details.get('rescored', '')}")
    for record in outcome.failing:
        print(f"FAILED: {record.suite}/{record.candidate} {record.metric} {record.verdict}: {record.message}")
    for c in outcome.failing_collateral:
        print(f"FAILED: collateral {collateral_line(c)}")
    print(f"reports: {out}")
    return EXIT_FINDINGS if outcome.failing or outcome.failing_collateral else EXIT_OK

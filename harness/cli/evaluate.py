"""Evaluate one candidate of a spec outside pytest: ``ft-harness evaluate`` or
``python -m harness.cli.evaluate``, in one process or data-parallel under a launcher::

    torchrun --nproc-per-node 2 -m harness.cli.evaluate --spec S --suite X --candidate C

Several processes (``WORLD_SIZE`` > 1) build the candidate together (a trained kind trains
data-parallel through the training lifecycle, or is found in the cache), share its eval set
(``harness.runner.sharded``) and gather the outputs on every process; the main process alone
writes the output cache, ``<out>/outputs/<suite>/<candidate>.jsonl`` and
``<out>/results/<suite>/<candidate>.json``, and prints one JSON line. The outputs equal those of
one process; the cache entries are per prompt, so a rerun with another process count reuses them.
Exit codes as every ``ft-harness`` command: 0 done, 2 usage, 3 harness error.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness import interrupts
from harness.cli.arguments import add_candidate_arguments, check_dir_option, positive_int
from harness.data.slices import cluster_labels
from harness.errors import HarnessError
from harness.jsonio import strict_dumps, write_atomic
from harness.kinds import build_candidate
from harness.results import RunState
from harness.runner.evaluate import evaluate_candidate
from harness.runner.outputs import outputs_path, write_outputs
from harness.runner.sharded import process_shard, wait_for_everyone
from harness.session import EvalSession, SessionOptions


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    add_candidate_arguments(parser)
    parser.add_argument("--batch-size", type=positive_int, default=None, help="inference batch size (default: the spec's)")
    parser.add_argument("--out", type=Path, default=Path("reports"),
                        help="where outputs/<suite>/<candidate>.jsonl and results/... go (default: reports)")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("evaluate", help="evaluate one candidate (data-parallel under torchrun)")
    _add_arguments(parser)
    parser.set_defaults(func=_run)


def _session(args: argparse.Namespace):

    return EvalSession(SessionOptions(spec_path=args.spec, root_dir=Path.cwd(), base_model=args.base_model,
                                      cache_dir=args.cache_dir, batch_size=args.batch_size))


def _write(result: Any, out: Path) -> dict[str, str]:

    written = write_outputs(RunState(results=[result]), out / "outputs")
    target = outputs_path(out / "results", result.suite, result.candidate).with_suffix(".json")
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(target, strict_dumps(result.as_dict(), indent=2, sort_keys=True, default=str) + "\n")
    return {"outputs": str(written[0]), "result": str(target)}


def evaluate(args: argparse.Namespace) -> dict[str, Any] | None:
    """Build and evaluate the candidate; the summary on the main process, ``None`` on the others."""

    session = _session(args)
    ctx = session.ctx
    suite = ctx.spec.suite(args.suite)
    spec = suite.candidate(args.candidate, ctx.spec.path)
    shard = process_shard()
    slices = session.slice_members(suite.name)  # slice problems refused before anything trains, as pytest does
    candidate = build_candidate(ctx, suite, spec)
    split = session.eval_split(suite.name)
    began = time.perf_counter()
    result = evaluate_candidate(ctx, candidate, suite, split, shard)
    result.slices = slices
    if suite.cluster is not None:

        result.clusters = cluster_labels(split.examples, suite.cluster)
    seconds = time.perf_counter() - began
    summary = None
    if shard is None or shard.is_main:
        files = _write(result, args.out)
        summary = {"suite": suite.name, "candidate": candidate.name, "examples": len(split.examples),
                   "processes": shard.world if shard else 1, "outputs_cache": result.cache.get("outputs"),
                   "evaluate_s": round(seconds, 3), "metrics": result.metrics, **files}
    wait_for_everyone(shard)  # no process leaves before the files are written
    return summary


def _run(args: argparse.Namespace) -> int:
    check_dir_option("--out", args.out)
    check_dir_option("--cache-dir", args.cache_dir)
    summary = evaluate(args)  # HarnessError: exit 3 through ft-harness's main
    if summary is not None:
        print(strict_dumps(summary, default=str), flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m harness.cli.evaluate``: exit 0, 2 on bad arguments, 3 on a harness error, 130
    interrupted (at once, skipping the interpreter's teardown, when run as the program)."""
    parser = argparse.ArgumentParser(prog="python -m harness.cli.evaluate",
                                     description="Evaluate one candidate of a spec (data-parallel under torchrun).")
    _add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except HarnessError as exc:
        print(f"ft-harness evaluate: error: {exc}", file=sys.stderr, flush=True)
        return 3
    except KeyboardInterrupt:
        print("ft-harness evaluate: interrupted", file=sys.stderr, flush=True)
        if argv is None:  # the program itself (torchrun's processes): leave at once
            interrupts.exit_now(130)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

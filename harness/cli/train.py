"""Train one candidate of a spec outside pytest: ``python -m harness.cli.train``.

One process: the candidate is built exactly as the pytest plugin builds it (same cache key,
checkpoints in ``<cache>/work/<key>/``, resumed after an interruption), so a later
``pytest suites/`` finds it in the cache. Several processes (``accelerate launch`` or
``torchrun``, ``WORLD_SIZE`` > 1): the same training lifecycle has every process train
together, data-parallel through the Trainer, into the shared work folder; the main process
stores the result and prints one JSON line describing the built candidate.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness import interrupts
from harness.cli.arguments import add_candidate_arguments
from harness.errors import HarnessError
from harness.jsonio import strict_dumps
from harness.kinds import build_candidate
from harness.protocol import Candidate
from harness.session import EvalSession, SessionOptions
from harness.training.lifecycle import world_size

# Kinds trained through the training lifecycle, which several processes can share.
TRAINED_TOGETHER = ("lora", "full", "encoder-lora", "encoder-full")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m harness.cli.train",
                                     description="Train (or find in the cache) one candidate of a spec.")
    add_candidate_arguments(parser)
    parser.add_argument("--no-resume", action="store_true", help="start over even if checkpoints exist")
    return parser


def _context(args: argparse.Namespace):

    options = SessionOptions(spec_path=args.spec, root_dir=Path.cwd(), base_model=args.base_model,
                             cache_dir=args.cache_dir, resume=not args.no_resume)
    return EvalSession(options).ctx


def _describe(candidate: Candidate, ctx: Any) -> dict[str, Any]:
    model_dir, adapter_dir = candidate.saved_dirs()
    training = candidate.training.as_dict() if candidate.training else {}
    return {
        "candidate": candidate.name, "kind": candidate.kind, "fingerprint": candidate.fingerprint,
        "model_dir": str(model_dir or ""), "adapter_dir": str(adapter_dir or ""),
        "train_loss": training.get("train_loss"), "eval_loss": training.get("eval_loss"),
        "resumed_from_step": training.get("resumed_from_step"), "notes": training.get("notes", []),
        "events": dict(ctx.events), "cache": ctx.cache.stats(),
    }


def _is_main_process(together: bool) -> bool:
    if not together:
        return True
    from accelerate import PartialState

    return PartialState().is_main_process


def main(argv: Sequence[str] | None = None) -> int:
    """Build the candidate; exit 0, 3 with a one-line message on a harness error, 130 interrupted."""
    args = _parser().parse_args(argv)
    try:
        ctx = _context(args)
        suite = ctx.spec.suite(args.suite)
        spec = suite.candidate(args.candidate, ctx.spec.path)
        together = world_size() > 1
        if together and spec.kind not in TRAINED_TOGETHER:
            raise HarnessError(f"{spec.kind!r} candidates train in one process; launch without "
                               f"accelerate/torchrun (several processes train: {', '.join(TRAINED_TOGETHER)})")
        candidate = build_candidate(ctx, suite, spec)  # the lifecycle trains with every process
        described = _describe(candidate, ctx) if _is_main_process(together) else None
    except HarnessError as exc:
        print(f"train_cli: error: {exc}", file=sys.stderr, flush=True)
        return 3
    except KeyboardInterrupt:  # checkpoints already saved stay: the next run resumes from the last one
        print("train_cli: interrupted", file=sys.stderr, flush=True)
        if argv is None:  # the program itself (accelerate's / torchrun's processes): leave at once
            interrupts.exit_now(130)
        return 130
    if described is not None:
        print(strict_dumps(described, default=str), flush=True)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

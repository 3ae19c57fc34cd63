"""Train one candidate of a spec outside pytest: ``python -m harness.cli.train``.

One process: the candidate is built exactly as the pytest plugin builds it (same cache key,
checkpoints in ``<cache>/work/<key>/``, resumed after an interruption), so a later
``pytest suites/`` finds it in the cache. Several processes (``accelerate launch`` or
``torchrun``, ``WORLD_SIZE`` > 1): every process trains together, data-parallel through the
Trainer, checkpoints go to the shared work folder and the main process stores the result.
Prints one JSON line describing the built candidate.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.errors import HarnessError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m harness.cli.train",
                                     description="Train (or find in the cache) one candidate of a spec.")
    parser.add_argument("--spec", type=Path, default=Path("fixtures/candidates.toml"), help="candidate spec TOML")
    parser.add_argument("--suite", required=True, help="suite name in the spec")
    parser.add_argument("--candidate", required=True, help="candidate name in the suite")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="artifact cache (default: $FT_HARNESS_CACHE or ./.ft-cache)")
    parser.add_argument("--base-model", default=None, help="'embedded', a local directory or a hub id")
    parser.add_argument("--no-resume", action="store_true", help="start over even if checkpoints exist")
    return parser


def _context(args: argparse.Namespace):
    from harness.cache import CacheStore, default_cache_root
    from harness.context import BuildContext
    from harness.spec import load_spec

    spec = load_spec(args.spec)
    root = args.cache_dir or default_cache_root(Path.cwd())
    return BuildContext(spec=spec, cache=CacheStore(root), base_model=args.base_model or spec.base_model,
                        batch_size=spec.batch_size,
                        options={"cache_root": root, "resume": not args.no_resume})


def _describe(candidate: Any, ctx: Any) -> dict[str, Any]:
    training = candidate.training.as_dict() if candidate.training else {}
    return {
        "candidate": candidate.name, "kind": candidate.kind, "fingerprint": candidate.fingerprint,
        "model_dir": str(getattr(candidate, "model_dir", "")),
        "adapter_dir": str(getattr(candidate, "adapter_dir", "") or ""),
        "train_loss": training.get("train_loss"), "eval_loss": training.get("eval_loss"),
        "resumed_from_step": training.get("resumed_from_step"), "notes": training.get("notes", []),
        "events": dict(ctx.events), "cache": ctx.cache.stats(),
    }


def _train_distributed(ctx: Any, suite: Any, spec: Any) -> dict[str, Any] | None:
    """All ranks train one ``lora`` / ``full`` candidate together; the main rank stores it."""
    import shutil

    from accelerate import PartialState

    from harness.backends.hf.candidates import plan_training
    from harness.training.lifecycle import training_failure
    from harness.training.resume import checkpoints_dir, remove_work_dir, work_dir

    if spec.kind not in ("lora", "full"):
        raise HarnessError(f"{spec.kind!r} candidates train in one process; launch without accelerate/torchrun")
    state = PartialState()
    plan = plan_training(ctx, suite, spec, spec.kind)
    if ctx.cache.info(plan.key) is None:
        work = work_dir(Path(ctx.options["cache_root"]), plan.key)
        output = work / "output"
        try:
            summary = plan.run(output, checkpoint_dir=checkpoints_dir(work),
                               log=ctx.log if state.is_main_process else None)
        except HarnessError:
            raise
        except Exception as exc:  # anything from torch / transformers / peft / trl
            raise training_failure(exc, where=plan.where, kind=plan.kind, params=plan.params) from None
        state.wait_for_everyone()
        if state.is_main_process:
            def store(tmp: Path) -> dict[str, Any]:
                shutil.copytree(output, tmp, dirs_exist_ok=True)
                return {"training": summary.as_dict()}

            ctx.cache.get_or_build(plan.key, store, description=f"{plan.kind} {suite.name}/{spec.name}")
            remove_work_dir(work)
        state.wait_for_everyone()
    if not state.is_main_process:
        return None
    from harness.kinds import build_candidate

    return _describe(build_candidate(ctx, suite, spec), ctx)


def main(argv: Sequence[str] | None = None) -> int:
    """Build the candidate; exit 0, or 3 with a one-line message on a harness error."""
    args = _parser().parse_args(argv)
    try:
        ctx = _context(args)
        suite = ctx.spec.suite(args.suite)
        spec = suite.candidate(args.candidate, ctx.spec.path)
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            described = _train_distributed(ctx, suite, spec)
        else:
            from harness.kinds import build_candidate

            described = _describe(build_candidate(ctx, suite, spec), ctx)
    except HarnessError as exc:
        print(f"train_cli: error: {exc}", file=sys.stderr, flush=True)
        return 3
    if described is not None:
        print(json.dumps(described, default=str), flush=True)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""The build helper a session starts (``[harness] build_processes = 2``): ``python -m harness.cli.prebuild``.

Builds the named candidates, in the order given, into the session's content cache exactly as the
session builds them (same context, same cache keys), then exits; see
:mod:`harness.runner.prebuild`. A candidate that fails here is skipped: the session builds it
itself and reports the error. SIGTERM ends the helper through the normal exception path, so the
cache entry it was staging is removed, and it stops by itself once its parent has gone.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from harness.errors import HarnessError
from harness.kinds import build_candidate
from harness.session import EvalSession, SessionOptions

EXIT_TERMINATED = 128 + signal.SIGTERM


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m harness.cli.prebuild",
                                     description="Build a session's trained candidates into its cache.")
    parser.add_argument("--spec", required=True, help="candidate spec TOML")
    parser.add_argument("--cache-dir", required=True, help="the session's artifact cache folder")
    parser.add_argument("--base-model", default=None, help="the session's base-model override")
    parser.add_argument("--encoder-model", default=None, help="the session's encoder-model override")
    parser.add_argument("--no-resume", action="store_true", help="the session does not resume checkpoints")
    parser.add_argument("--candidate", action="append", default=[], metavar="SUITE/NAME",
                        help="a candidate to build (repeatable, built in the order given)")
    return parser


def _terminated(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(EXIT_TERMINATED)


def main(argv: Sequence[str] | None = None) -> int:
    """Build each named candidate; exit 0 (failures are left to the session), 2 on bad arguments, 130
    interrupted (Ctrl-C reaches the session's whole process group)."""
    args = _parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _terminated)
    parent = os.getppid()
    session = EvalSession(SessionOptions(spec_path=Path(args.spec), root_dir=Path.cwd(), base_model=args.base_model,
                                         cache_dir=Path(args.cache_dir), encoder_model=args.encoder_model,
                                         resume=not args.no_resume), log=lambda message: None)
    try:
        for item in args.candidate:
            if os.getppid() != parent:  # the session is gone: nobody will read what comes next
                break
            suite_name, _, name = item.partition("/")
            try:
                suite = session.spec.suite(suite_name)
                build_candidate(session.ctx, suite, suite.candidate(name, session.spec.path)).release()
            except HarnessError as exc:
                print(f"prebuild: {item}: {exc}", file=sys.stderr, flush=True)
    except KeyboardInterrupt:  # the entry being staged is already removed; the session reports the interrupt
        return 130
    finally:
        session.close()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""A helper process that trains a session's local fine-tunes ahead of its tests.

With one intra-op thread per process (the example spec: models this small gain nothing from a
second thread), a cold ``pytest suites/`` trains one model at a time and leaves the second core of
a 2-core machine idle. With ``[harness] build_processes = 2`` the session starts one helper,
``python -m harness.cli.prebuild``, when it builds its first candidate. The helper builds the
selected suites' trained candidates into the same content cache, in the order that meets the
session's own in the middle: first those trained on a base of their own (encoder kinds: the
session starts with the spec's causal base, which they do not wait for), then the others from
the last suite backwards. Both processes build through ``CacheStore.get_or_build``, so a key is
built once; whichever process asks second waits for its lock and reads the entry. Every result
is the one the session alone would have computed (same seeds, parameters and thread count).

The helper only adds cache entries: a candidate it fails to build is built, and its error
reported, by the session; the session stops the helper when it ends.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.spec import HarnessSpec

#: local kinds whose build trains; the helper never builds remote (billed) candidates
TRAINED_KINDS = ("lora", "full", "search", "encoder-lora", "encoder-full")
#: kinds trained from an encoder base of their own, not from the spec's causal base
OWN_BASE_KINDS = ("encoder-lora", "encoder-full")
HELPER_MODULE = "harness.cli.prebuild"


def prebuild_order(spec: HarnessSpec, suites: Sequence[str]) -> list[tuple[str, str]]:
    """The ``(suite, candidate)`` pairs the helper builds, in order: of ``suites`` (in the order
    the session evaluates them), the trained candidates with a base of their own first, then the
    other trained candidates, each group from the last suite backwards (spec order within a suite)."""
    pairs = [(suite, name) for suite in reversed(list(dict.fromkeys(suites))) if suite in spec.suites
             for name, candidate in spec.suites[suite].candidates.items() if candidate.kind in TRAINED_KINDS]
    return sorted(pairs, key=lambda pair: spec.suites[pair[0]].candidates[pair[1]].kind not in OWN_BASE_KINDS)


def helper_command(spec_path: Path, cache_dir: Path, order: Sequence[tuple[str, str]], *,
                   base_model: str | None = None, encoder_model: str | None = None,
                   resume: bool = True) -> list[str]:
    """The command line of the helper process (this interpreter, the session's build options)."""
    command = [sys.executable, "-m", HELPER_MODULE, "--spec", str(Path(spec_path).resolve()),
               "--cache-dir", str(Path(cache_dir).resolve())]
    if base_model:
        command += ["--base-model", base_model]
    if encoder_model:
        command += ["--encoder-model", encoder_model]
    if not resume:
        command.append("--no-resume")
    for suite, name in order:
        command += ["--candidate", f"{suite}/{name}"]
    return command


@dataclass
class BuildHelper:
    """A running helper process; :meth:`stop` ends it (idempotent)."""

    process: subprocess.Popen[bytes]
    order: tuple[tuple[str, str], ...]

    @classmethod
    def start(cls, command: Sequence[str], order: Sequence[tuple[str, str]]) -> BuildHelper:
        """Start ``command`` with no input and its output discarded (the session reports any error)."""
        process = subprocess.Popen(list(command), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        return cls(process, tuple(order))

    def running(self) -> bool:
        """Whether the helper is still building."""
        return self.process.poll() is None

    def stop(self, grace_s: float = 0.5) -> int | None:
        """End the helper: SIGTERM (it removes what it was staging), then SIGKILL after ``grace_s``;
        returns its exit status."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()
            try:
                self.process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
                self.process.wait()
        return self.process.returncode

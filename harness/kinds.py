"""The one discovery point of candidate kinds: imports every built-in family (each registers its
kinds with :mod:`harness.spec.registry` next to their builders) and loads third-party families
from the ``harness.kinds`` entry point group (see docs/extending.md)."""

from __future__ import annotations

from pathlib import Path

from harness.backends import prompted, recorded
from harness.backends.encoder import kinds as encoder_kinds
from harness.backends.hf import kinds as hf_kinds
from harness.backends.openai import kinds as openai_kinds
from harness.backends.vllm import kinds as vllm_kinds
from harness.context import BuildContext
from harness.errors import SpecError
from harness.protocol import Candidate
from harness.spec import CandidateSpec, HarnessSpec, SuiteSpec
from harness.spec import load_spec as load_checked_spec
from harness.spec.registry import KINDS, build, discover_entry_points
from harness.tuning import search

#: The built-in families, in the order their kinds are listed.
BUILTIN_FAMILIES = (hf_kinds, search, openai_kinds, prompted, recorded, encoder_kinds, vllm_kinds)

for _family in BUILTIN_FAMILIES:
    _family.register()
discover_entry_points()


def build_candidate(ctx: BuildContext, suite: SuiteSpec, spec: CandidateSpec) -> Candidate:
    """Build (train or load) the candidate ``spec`` of ``suite``."""
    if spec.kind not in KINDS:
        raise SpecError(f"{ctx.spec.path}: suites.{suite.name}.candidates.{spec.name}.kind: unknown kind "
                        f"{spec.kind!r} (known: {', '.join(sorted(KINDS))})")
    return build(ctx, suite, spec)


def load_spec(path: Path | str) -> HarnessSpec:
    """The spec at ``path``, checked completely against every registered kind."""
    return load_checked_spec(path)

"""The parsed spec as plain, frozen data: the whole file, its suites and their candidates."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.data import load_split
from harness.data.records import Split
from harness.errors import SpecError
from harness.gate.config import GateConfig
from harness.metrics.registry import default_metrics
from harness.protocol import DecodeParams
from harness.spec.collateral import CollateralSpec
from harness.spec.judges import HumanSpec, JudgeSpec
from harness.spec.scorers import ScorerSpec
from harness.spec.slices import SliceSpec

#: splits already read this run, by (path, split name, system prompt, file size and mtime): the spec's
#: checks, a prompted candidate's shots and the evaluation all read a file once while it is unchanged
_SPLITS: dict[tuple[str, str, str | None, int, int], Split] = {}


def _read_split(path: Path, which: str, system: str | None) -> Split:
    """The split at ``path``, read once while the file is unchanged (size and modification time)."""
    try:
        stat = Path(path).stat()
    except OSError:
        return load_split(path, name=which, system=system)  # the loader names the problem
    key = (str(Path(path).resolve()), which, system, stat.st_size, stat.st_mtime_ns)
    if key not in _SPLITS:
        _SPLITS[key] = load_split(path, name=which, system=system)
    split = _SPLITS[key]
    return replace(split, examples=list(split.examples))  # callers may reorder or filter their copy


@dataclass(frozen=True)
class CandidateSpec:
    """One candidate: its kind, training parameters and kind-specific options."""

    name: str
    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SuiteSpec:
    """One evaluation suite: task, data splits, decoding, gate settings and candidates.

    ``system`` (optional) is the system prompt given to every train and eval conversation that
    has none of its own; ``gate`` is the parsed ``[gate]`` table.
    """

    name: str
    task: str
    train: Path | None
    validation: Path | None
    eval: Path
    labels: tuple[str, ...] = ()
    label_aliases: dict[str, str] = field(default_factory=dict)
    decode: DecodeParams = field(default_factory=DecodeParams)
    scoring: str = "generate"
    gate: GateConfig = field(default_factory=GateConfig)
    metrics: tuple[str, ...] = ()
    metric_options: dict[str, Any] = field(default_factory=dict)
    candidates: dict[str, CandidateSpec] = field(default_factory=dict)
    system: str | None = None
    #: slice families (``[suites.<name>.slices]``): metrics are also reported and gated per slice
    slices: tuple[SliceSpec, ...] = ()
    #: training-data loss limits (fractions of the train rows, 0-1): a trained candidate whose trainer
    #: would drop (all labels masked) / truncate more rows fails before training; None: no limit
    max_dropped_fraction: float | None = None
    max_truncated_fraction: float | None = None
    #: label log-likelihoods compared as they are (``none``), per character (``chars``, lm-eval's
    #: ``acc_norm``) or per UTF-8 byte (``bytes``, ``acc_bytes``)
    likelihood_normalize: str = "none"
    #: eval rows whose prompt may also occur in train (exactly or after case / whitespace
    #: normalisation); more is refused at load, any is shown in the report
    allow_train_eval_overlap: int = 0
    #: custom scorers (``[suites.<name>.scorers]``), reported as ``scorer:<name>``
    scorers: tuple[ScorerSpec, ...] = ()
    #: judges (``[suites.<name>.judges]``), reported as ``judge:<name>``
    judges: tuple[JudgeSpec, ...] = ()
    #: collateral checks (``[suites.<name>.collateral]``): forgetting, agreement, refusals, calibration
    collateral: CollateralSpec | None = None
    #: people's labels (``[suites.<name>.human]``), reported as ``human:<against>``
    human: HumanSpec | None = None
    #: the eval rows' metadata field that groups dependent items (``cluster = "document"``): the gate's
    #: intervals, tests and MDEs then use cluster-robust variance (:mod:`harness.stats.clustered`)
    cluster: str | None = None
    #: evaluations of each candidate (``--ft-repeat`` overrides it); with sampled decoding each item's
    #: score for the gate is its mean over the repeats (:mod:`harness.runner.stability`)
    repeats: int = 1

    @property
    def graded_metrics(self) -> tuple[str, ...]:
        """The metrics the suite declares by name (custom scorers, judges, human labels)."""
        human = (self.human.metric,) if self.human is not None else ()
        return tuple(s.metric for s in self.scorers) + tuple(j.metric for j in self.judges) + human

    @property
    def reported_metrics(self) -> tuple[str, ...]:
        """The metrics this suite reports: those it lists (else its task's defaults) and its graded ones."""
        return (self.metrics or default_metrics(self.task)) + self.graded_metrics

    def load_split(self, which: str) -> Split:
        """The suite's ``train``, ``validation`` or ``eval`` split, loaded and validated.

        With ``system`` set, every conversation starts with that system prompt (added where it has
        none); a conversation carrying a different one of its own is refused, never overridden.
        """
        path = {"train": self.train, "validation": self.validation, "eval": self.eval}[which]
        if path is None:
            raise SpecError(f"suite {self.name!r} has no {which} split (add `{which} = ...` to the spec)")
        split = _read_split(path, which, self.system)
        if self.system is not None:
            own = [ex for ex in split.examples
                   if ex.messages and ex.messages[0].get("role") == "system"
                   and ex.messages[0].get("content") != self.system]
            if own:
                first = own[0]
                raise SpecError(f"{first.source or path}:{first.line}: suite {self.name!r} sets `system = ...` but "
                                f"{len(own)} of {len(split)} {which} conversations carry a different system "
                                "prompt of their own; remove one of the two")
        return split

    def candidate(self, name: str, spec_path: Path | str = "") -> CandidateSpec:
        try:
            return self.candidates[name]
        except KeyError:
            known = ", ".join(sorted(self.candidates)) or "none"
            raise SpecError(f"{spec_path}: suite {self.name!r} has no candidate {name!r} "
                            f"(declared: {known})") from None


@dataclass(frozen=True)
class HarnessSpec:
    """The whole spec file."""

    path: Path
    base_model: str = "embedded"
    corpus: Path | None = None
    seed: int = 0
    batch_size: int = 32
    torch_threads: int | None = None
    #: processes that build (train) candidates: 1, the session alone; 2, a helper process trains the
    #: selected suites' local fine-tunes ahead of the tests into the shared cache (harness.runner.prebuild)
    build_processes: int = 1
    tiny: dict[str, Any] = field(default_factory=dict)
    pricing: dict[str, Any] = field(default_factory=dict)
    #: fine-tune-or-prompt decision: requests a month the model will serve, and what an hour of
    #: local training compute costs (US dollars); None where the spec does not say
    expected_monthly_requests: int | None = None
    compute_price_per_hour: float | None = None
    suites: dict[str, SuiteSpec] = field(default_factory=dict)

    def suite(self, name: str) -> SuiteSpec:
        try:
            return self.suites[name]
        except KeyError:
            known = ", ".join(sorted(self.suites)) or "none"
            raise SpecError(f"{self.path}: no suite {name!r} (declared: {known})") from None

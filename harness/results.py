"""The run's results as plain data: what the plugin records and the report and gate read.

Everything here is JSON-serialisable through ``as_dict`` so ``results.json`` and the
per-example run files hold exactly what the markdown report shows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from harness.metrics.registry import paired_score_table

# Which per-example score backs each aggregate metric in paired tests, and its score type
# (read from the metric registry).
PAIRED_SCORE = paired_score_table()


@dataclass
class EvalResult:
    """One candidate scored on one suite's eval split, with every per-example score kept.

    ``metrics`` holds aggregates on the scale the report shows (accuracy and F1 in 0–1,
    BLEU and ROUGE in 0–100); ``per_example`` holds the paired-test scores named in
    ``PAIRED_SCORE`` on the same scale as their aggregate.
    """

    suite: str
    candidate: str
    kind: str
    fingerprint: str
    task: str
    split: str
    split_fingerprint: str
    example_ids: list[str]
    inputs: list[str]
    references: list[str]
    predictions: list[str]
    metrics: dict[str, float]
    per_example: dict[str, list[float]]
    signatures: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    usage: dict[str, float] = field(default_factory=dict)
    training: dict[str, Any] | None = None
    cache: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    #: content fingerprint of each example (same order as ``example_ids``): the gate pairs
    #: with the baseline by id and fingerprint, so an edited example is left out, not compared
    example_fingerprints: list[str] = field(default_factory=list)
    #: slice membership ``{family: {slice: [example ids]}}`` of the suite's declared slices
    #: (:mod:`harness.data.slices`): what per-slice metrics, comparisons and gates read
    slices: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    #: ``{example id: cluster}`` of a suite with ``cluster = "<metadata field>"``: the gate's tests
    #: then use cluster-robust variance (empty: independent examples)
    clusters: dict[str, str] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.example_ids)

    def paired_scores(self, metric: str) -> tuple[list[float], str]:
        """The per-example scores behind ``metric`` and their type ("binary" / "continuous")."""
        if metric not in PAIRED_SCORE:
            raise KeyError(f"metric {metric!r} has no per-example scores; paired metrics: "
                           f"{', '.join(sorted(PAIRED_SCORE))}")
        name, kind = PAIRED_SCORE[metric]
        if name not in self.per_example:
            raise KeyError(f"candidate {self.candidate!r} in suite {self.suite!r} has no per-example "
                           f"{name!r} scores (metrics: {', '.join(sorted(self.per_example))})")
        return self.per_example[name], kind

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvalResult:
        return cls(**data)


@dataclass
class ComparisonRecord:
    """A paired A/B comparison of two candidates on one metric (``b`` against ``a``)."""

    suite: str
    metric: str
    a: str
    b: str
    result: dict[str, Any]  # harness.stats.compare's result as a dict
    #: degenerate-model warnings of either side, e.g. "lora: constant predictor: 'positive' for 100% of examples"
    flags: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class GateRecord:
    """One gated metric's verdict: pass, improved, regressed, inconclusive or no baseline."""

    suite: str
    candidate: str
    metric: str
    verdict: str
    baseline: float | None
    current: float
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CollateralRecord:
    """One collateral check of one candidate, paired against the suite's reference (the base).

    ``metric`` is what the check measures (``bits_per_byte``, ``agreement_rougeL``, ``refusal_rate``,
    ``benign_answer_rate``, ``brier``); ``difference`` and ``ci`` are candidate minus reference in
    the metric's units; ``higher_is_better`` says which way is worse. ``slices`` holds the same
    comparison per category (refusals), Holm-adjusted across categories.
    """

    suite: str
    candidate: str
    reference: str
    check: str
    metric: str
    verdict: str
    tolerance: float
    higher_is_better: bool
    n: int
    candidate_value: float
    reference_value: float
    difference: float
    ci: list[float]
    test: dict[str, Any]
    ids: list[str] = field(default_factory=list)
    candidate_scores: list[float] = field(default_factory=list)
    reference_scores: list[float] = field(default_factory=list)
    slices: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    #: each item's category (refusals), in ``ids`` order
    categories: list[str] = field(default_factory=list)
    #: the same check against the accepted baseline's per-item scores of this candidate
    #: (``verdict``: a gate verdict, "no baseline" or "not comparable"; then values, Δ, CI, test, slices)
    baseline: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Problem:
    """A failed test, classified for the summary: a regression (the gate), a harness error (bad
    data, failed job), a failed check (a suite's own assertion) or a test error (broken test code)."""

    nodeid: str
    category: str  # "regression" | "harness error" | "failed check" | "test error"
    message: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RunState:
    """Everything one pytest session recorded, merged across xdist workers."""

    results: list[EvalResult] = field(default_factory=list)
    comparisons: list[ComparisonRecord] = field(default_factory=list)
    gates: list[GateRecord] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    run_info: dict[str, Any] = field(default_factory=dict)
    #: spec settings the report reads (pricing, expected volume, compute price, gated metric per suite)
    settings: dict[str, Any] = field(default_factory=dict)
    #: per suite, the "fine-tune or prompt?" figures (written with the reports)
    decisions: dict[str, Any] = field(default_factory=dict)
    #: collateral checks (forgetting, agreement, refusals, calibration) against each suite's reference
    collateral: list[CollateralRecord] = field(default_factory=list)

    def suites(self) -> list[str]:
        names = ({r.suite for r in self.results} | {c.suite for c in self.comparisons} | {g.suite for g in self.gates}
                 | {c.suite for c in self.collateral})
        return sorted(names)

    def result(self, suite: str, candidate: str) -> EvalResult | None:
        for r in self.results:
            if r.suite == suite and r.candidate == candidate:
                return r
        return None

    def as_dict(self) -> dict[str, Any]:
        return {
            "results": [r.as_dict() for r in self.results],
            "comparisons": [c.as_dict() for c in self.comparisons],
            "gates": [g.as_dict() for g in self.gates],
            "problems": [p.as_dict() for p in self.problems],
            "run_info": self.run_info,
            "settings": self.settings,
            "decisions": self.decisions,
            "collateral": [c.as_dict() for c in self.collateral],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunState:
        return cls(
            results=[EvalResult.from_dict(r) for r in data.get("results", [])],
            comparisons=[ComparisonRecord(**c) for c in data.get("comparisons", [])],
            gates=[GateRecord(**g) for g in data.get("gates", [])],
            problems=[Problem(**p) for p in data.get("problems", [])],
            run_info=dict(data.get("run_info", {})),
            settings=dict(data.get("settings") or {}),
            decisions=dict(data.get("decisions") or {}),
            collateral=[CollateralRecord(**c) for c in data.get("collateral", [])],
        )

    def merge(self, other: RunState) -> None:
        """Add another worker's records (xdist), keeping one result per (suite, candidate)."""
        seen = {(r.suite, r.candidate) for r in self.results}
        self.results.extend(r for r in other.results if (r.suite, r.candidate) not in seen)
        self.comparisons.extend(other.comparisons)
        self.gates.extend(other.gates)
        self.problems.extend(other.problems)
        self.collateral.extend(other.collateral)
        self.settings = self.settings or dict(other.settings)
        _merge_counts(self.run_info, other.run_info)


def _merge_counts(into: dict[str, Any], other: dict[str, Any]) -> None:
    """Add numeric leaves of ``other`` into ``into`` (nested dicts merged, other values kept once)."""
    for key, value in other.items():
        mine = into.get(key)
        if isinstance(value, dict) and isinstance(mine, dict):
            _merge_counts(mine, value)
        elif isinstance(value, (int, float)) and isinstance(mine, (int, float)) and not isinstance(value, bool):
            into[key] = mine + value
        elif key not in into:
            into[key] = value

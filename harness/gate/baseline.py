"""The baseline: the reviewed record of each candidate's scores that later runs are gated against.

``reports/baseline.json`` is committed and reviewed in pull requests, so it is written
pretty-printed with sorted keys (small, readable diffs). Schema, version :data:`SCHEMA_VERSION`::

    {
      "schema_version": 1,
      "suites": {
        "<suite>": {
          "<candidate>": {
            "kind": "lora",                       # candidate kind
            "model_fingerprint": "<sha256>",      # what model produced these scores
            "split": "eval",                      # eval split name
            "split_fingerprint": "<sha256>",      # eval-set content fingerprint
            "n": 200,                             # examples scored
            "hyperparameters": {...} | null,      # training hyperparameters (null: not trained)
            "versions": {"harness": "0.1.0", "torch": "2.13.0", ...},
            "date": "2025-06-01",                 # when the entry was accepted (UTC)
            "outputs": {"<example id>": "..."},   # output text (optional): flips, the HTML diff
            "collateral": {                       # optional: collateral checks of this candidate
              "<check>/<metric>": {               # e.g. "forgetting/bits_per_byte", "refusals/refusal_rate"
                "value": 1.92 | null, "n": 60, "reference": "base", "higher_is_better": false,
                "signature": "...",               # what decides the per-item score (detector, metric, decoding)
                "set_fingerprint": "<sha256>",    # the check's items (texts, prompts, requests, eval split)
                "scores": {"<item id>": 1.87, ...},
                "slices": {"<category>": ["<item id>", ...]} | null   # refusals: per category
              }
            },
            "metrics": {
              "<metric>": {
                "value": 0.91 | null,             # aggregate, on EvalResult.metrics' scale
                "n": 200,
                "signature": "<metric signature>",  # "" when the metric has none
                "score": "correct" | null,        # per-example score behind the metric
                "score_kind": "binary" | "continuous" | null,
                "scores": {"<example id>": 1.0, ...} | null
              }
            }
          }
        }
      }
    }

Per-example scores are keyed by example id, so a regression can name the examples that
flipped and a diff in review shows exactly which examples changed. Only metrics listed in
:data:`harness.results.PAIRED_SCORE` carry per-example scores; the others keep their aggregate.
This module is pure (dicts in, dicts out); reading and writing the file is in ``store``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.cache.keys import installed_version
from harness.cache.keys import library_versions as stack_versions
from harness.jsonio import strict_dumps
from harness.results import PAIRED_SCORE, CollateralRecord, EvalResult
from harness.secrets import redact_value

SCHEMA_VERSION = 1

#: Scoring libraries recorded with every entry besides the training stack (results differ
#: across versions of either).
SCORING_DISTRIBUTIONS = ("scikit-learn", "scipy", "numpy", "sacrebleu", "rouge-score", "nltk")

_NUMBER_OR_NULL = {"type": ["number", "null"]}
_STRING = {"type": "string"}

#: JSON Schema of the file (checked with ``jsonschema`` on load).
JSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["schema_version", "suites"],
    "additionalProperties": False,
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "suites": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "required": ["kind", "model_fingerprint", "split", "split_fingerprint", "n",
                                 "hyperparameters", "versions", "date", "metrics"],
                    "additionalProperties": False,
                    "properties": {
                        "kind": _STRING,
                        "model_fingerprint": _STRING,
                        "split": _STRING,
                        "split_fingerprint": _STRING,
                        "n": {"type": "integer", "minimum": 0},
                        "hyperparameters": {"type": ["object", "null"]},
                        "versions": {"type": "object", "additionalProperties": _STRING},
                        "date": _STRING,
                        # content fingerprint of each example, by id (optional: older files lack it)
                        "example_fingerprints": {"type": ["object", "null"], "additionalProperties": _STRING},
                        # slice membership {family: {slice: [example ids]}} (optional)
                        "slices": {"type": "object", "additionalProperties": {
                            "type": "object", "additionalProperties": {"type": "array", "items": _STRING}}},
                        # each example's output text, by id (optional): flips tell churn from unchanged
                        "outputs": {"type": "object", "additionalProperties": _STRING},
                        # collateral checks by "<check>/<metric>" (optional)
                        "collateral": {"type": "object", "additionalProperties": {
                            "type": "object",
                            "required": ["value", "n", "reference", "higher_is_better", "signature",
                                         "set_fingerprint", "scores"],
                            "additionalProperties": False,
                            "properties": {
                                "value": _NUMBER_OR_NULL,
                                "n": {"type": "integer", "minimum": 0},
                                "reference": _STRING,
                                "higher_is_better": {"type": "boolean"},
                                "signature": _STRING,
                                "set_fingerprint": _STRING,
                                "scores": {"type": "object", "additionalProperties": {"type": "number"}},
                                "slices": {"type": ["object", "null"],
                                           "additionalProperties": {"type": "array", "items": _STRING}},
                            },
                        }},
                        "metrics": {
                            "type": "object",
                            "additionalProperties": {
                                "type": "object",
                                "required": ["value", "n", "signature", "score", "score_kind", "scores"],
                                "additionalProperties": False,
                                "properties": {
                                    "value": _NUMBER_OR_NULL,
                                    "n": {"type": "integer", "minimum": 0},
                                    "signature": _STRING,
                                    "score": {"type": ["string", "null"]},
                                    "score_kind": {"enum": ["binary", "continuous", None]},
                                    "scores": {"type": ["object", "null"],
                                               "additionalProperties": {"type": "number"}},
                                    # per-example sufficient statistics of a corpus metric (BLEU)
                                    "stats": {"type": ["object", "null"],
                                              "additionalProperties": {"type": "array",
                                                                       "items": {"type": "integer"}}},
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}


@dataclass(frozen=True)
class BaselineMetric:
    """One metric of one baseline entry: its aggregate and, when paired, per-example scores by id."""

    value: float | None
    n: int
    signature: str = ""
    score: str | None = None
    score_kind: str | None = None
    scores: dict[str, float] | None = None
    stats: dict[str, list[float]] | None = None  # corpus metrics: sufficient statistics by example id

    def as_dict(self) -> dict[str, Any]:
        """The metric as stored under ``metrics.<metric>`` (``stats`` only where there are some)."""
        data: dict[str, Any] = {"value": self.value, "n": self.n, "signature": self.signature, "score": self.score,
                "score_kind": self.score_kind,
                "scores": dict(self.scores) if self.scores is not None else None}
        if self.stats is not None:
            data["stats"] = {k: list(v) for k, v in self.stats.items()}
        return data


@dataclass(frozen=True)
class BaselineCollateral:
    """One collateral check of one entry as accepted: the candidate's per-item scores by item id."""

    value: float | None
    n: int
    reference: str
    higher_is_better: bool
    signature: str
    set_fingerprint: str
    scores: dict[str, float]
    slices: dict[str, list[str]] | None = None  # category -> item ids (refusals)

    def as_dict(self) -> dict[str, Any]:
        """The check as stored under ``collateral.<check>/<metric>``."""
        return {"value": self.value, "n": self.n, "reference": self.reference,
                "higher_is_better": self.higher_is_better, "signature": self.signature,
                "set_fingerprint": self.set_fingerprint, "scores": dict(self.scores),
                "slices": {k: list(v) for k, v in self.slices.items()} if self.slices is not None else None}


def collateral_key(check: str, metric: str) -> str:
    """How a collateral check is keyed in an entry: ``<check>/<metric>``."""
    return f"{check}/{metric}"


@dataclass(frozen=True)
class BaselineEntry:
    """What was accepted for one (suite, candidate): scores plus everything that produced them."""

    suite: str
    candidate: str
    kind: str
    model_fingerprint: str
    split: str
    split_fingerprint: str
    n: int
    metrics: dict[str, BaselineMetric]
    hyperparameters: dict[str, Any] | None = None
    versions: dict[str, str] = field(default_factory=dict)
    date: str = ""
    example_fingerprints: dict[str, str] | None = None  # content fingerprint by example id
    slices: dict[str, dict[str, list[str]]] | None = None  # slice membership by family and slice
    outputs: dict[str, str] | None = None  # the output text by example id (flips, the HTML diff)
    collateral: dict[str, BaselineCollateral] | None = None  # collateral checks by "<check>/<metric>"

    def as_dict(self) -> dict[str, Any]:
        """The entry as stored under ``suites.<suite>.<candidate>``."""
        data = {
            "kind": self.kind, "model_fingerprint": self.model_fingerprint, "split": self.split,
            "split_fingerprint": self.split_fingerprint, "n": self.n,
            "hyperparameters": self.hyperparameters, "versions": dict(self.versions), "date": self.date,
            "metrics": {name: m.as_dict() for name, m in sorted(self.metrics.items())},
        }
        if self.example_fingerprints is not None:
            data["example_fingerprints"] = dict(self.example_fingerprints)
        if self.slices:
            data["slices"] = {family: {name: list(ids) for name, ids in groups.items()}
                              for family, groups in self.slices.items()}
        if self.outputs is not None:
            data["outputs"] = dict(self.outputs)
        if self.collateral:
            data["collateral"] = {key: c.as_dict() for key, c in sorted(self.collateral.items())}
        return data

    def same_scores(self, other: BaselineEntry) -> bool:
        """True when ``other`` records the same results (the acceptance date is ignored)."""
        mine, theirs = self.as_dict(), other.as_dict()
        mine.pop("date")
        theirs.pop("date")
        return mine == theirs

    @classmethod
    def from_dict(cls, suite: str, candidate: str, data: dict[str, Any]) -> BaselineEntry:
        """Build from the stored mapping (already schema-checked)."""
        metrics = {name: BaselineMetric(**m) for name, m in data["metrics"].items()}
        return cls(suite=suite, candidate=candidate, kind=data["kind"],
                   model_fingerprint=data["model_fingerprint"], split=data["split"],
                   split_fingerprint=data["split_fingerprint"], n=data["n"], metrics=metrics,
                   hyperparameters=data["hyperparameters"], versions=dict(data["versions"]),
                   date=data["date"], example_fingerprints=data.get("example_fingerprints"),
                   slices=data.get("slices"), outputs=data.get("outputs"),
                   collateral={key: BaselineCollateral(**c) for key, c in data["collateral"].items()}
                   if data.get("collateral") else None)


@dataclass
class Baseline:
    """All accepted entries, keyed by (suite, candidate); ``exists`` is False for a missing file."""

    entries: dict[tuple[str, str], BaselineEntry] = field(default_factory=dict)
    path: str = ""
    exists: bool = True
    #: how the note tells to accept a run (the pytest and accept commands; a session gives its paths)
    commands: tuple[str, str] = ("pytest suites/ --ft-update-baseline", "ft-harness baseline accept")

    def entry(self, suite: str, candidate: str) -> BaselineEntry | None:
        """The accepted entry of ``candidate`` in ``suite``, or None."""
        return self.entries.get((suite, candidate))

    @property
    def note(self) -> str | None:
        """A one-line remark for reports when there is nothing to gate against yet."""
        if self.exists and self.entries:
            return None
        where = self.path or "the baseline file"
        return (f"no baseline yet ({where} {'is empty' if self.exists else 'does not exist'}): "
                "every gated metric reads 'no baseline'; accept this run with "
                f"`{self.commands[0]}` or `{self.commands[1]}`")

    def as_dict(self) -> dict[str, Any]:
        """The whole file's content, suites and candidates in sorted order."""
        suites: dict[str, dict[str, Any]] = {}
        for (suite, candidate), entry in sorted(self.entries.items()):
            suites.setdefault(suite, {})[candidate] = entry.as_dict()
        return {"schema_version": SCHEMA_VERSION, "suites": suites}

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, path: str = "") -> Baseline:
        """Build from a schema-checked mapping."""
        entries = {
            (suite, candidate): BaselineEntry.from_dict(suite, candidate, entry)
            for suite, candidates in data["suites"].items()
            for candidate, entry in candidates.items()
        }
        return cls(entries=entries, path=path, exists=True)


def library_versions() -> dict[str, str]:
    """Installed versions of the harness, the training stack and the scoring libraries."""

    versions = dict(stack_versions())
    for name in SCORING_DISTRIBUTIONS:
        versions[name] = installed_version(name)
    return {name: version for name, version in sorted(versions.items()) if version}


def _finite_or_none(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _stat(value: float) -> float:
    """A sufficient statistic as stored: counts as integers, averages (TER's reference length) as they are."""
    number = float(value)
    return int(number) if number.is_integer() else number


def collateral_from_records(records: Sequence[CollateralRecord]) -> dict[str, BaselineCollateral] | None:
    """The collateral checks of one candidate as stored (checks that did not apply are left out)."""
    stored = {}
    for r in records:
        if not r.ids:
            continue
        slices: dict[str, list[str]] = {}
        for item_id, category in zip(r.ids, r.categories, strict=False):
            slices.setdefault(category, []).append(item_id)
        stored[collateral_key(r.check, r.metric)] = BaselineCollateral(
            value=_finite_or_none(r.candidate_value), n=r.n, reference=r.reference,
            higher_is_better=r.higher_is_better, signature=str(r.details.get("signature", "")),
            set_fingerprint=str(r.details.get("set_fingerprint", "")),
            scores={i: float(v) for i, v in zip(r.ids, r.candidate_scores, strict=True)},
            slices=slices if len(slices) > 1 else None)
    return stored or None


def entry_from_result(result: EvalResult, *, versions: dict[str, str], date: str,
                      collateral: Sequence[CollateralRecord] = ()) -> BaselineEntry:
    """The baseline entry recording ``result`` (every aggregate; per-example scores where paired) and
    its ``collateral`` checks."""
    metrics: dict[str, BaselineMetric] = {}
    for name, value in result.metrics.items():
        score_name, score_kind = PAIRED_SCORE.get(name, (None, None))
        scores = None
        if score_name is not None and score_name in result.per_example:
            values = result.per_example[score_name]
            scores = {example_id: float(v) for example_id, v in zip(result.example_ids, values, strict=True)
                      if v is not None}  # None: not scored on this example (people's labels)
        else:
            score_name = score_kind = None
        stats_rows = result.details.get(f"{name}_stats") if scores is not None else None
        stats = ({example_id: [_stat(x) for x in row] for example_id, row in
                  zip(result.example_ids, stats_rows, strict=True)} if stats_rows else None)
        metrics[name] = BaselineMetric(value=_finite_or_none(value), n=result.n,
                                       signature=str(result.signatures.get(name, "")),
                                       score=score_name, score_kind=score_kind, scores=scores, stats=stats)
    hyperparameters = (result.training or {}).get("hyperparameters")
    if hyperparameters is not None:  # stored as JSON holds it, so a reloaded entry compares equal
        hyperparameters = redact_value(json.loads(strict_dumps(hyperparameters, default=str, sort_keys=True)))
    return BaselineEntry(
        suite=result.suite, candidate=result.candidate, kind=result.kind,
        model_fingerprint=result.fingerprint, split=result.split,
        split_fingerprint=result.split_fingerprint, n=result.n, metrics=metrics,
        hyperparameters=hyperparameters,
        versions=dict(versions), date=date,
        example_fingerprints=(dict(zip(result.example_ids, result.example_fingerprints, strict=True))
                              if result.example_fingerprints else None),
        slices={family: {name: list(ids) for name, ids in groups.items()}
                for family, groups in (result.slices or {}).items()} or None,
        outputs=dict(zip(result.example_ids, (str(p) for p in result.predictions), strict=True))
        if len(result.predictions) == len(result.example_ids) else None,
        collateral=collateral_from_records(collateral),
    )

"""The candidate spec: one TOML file declares the suites, their data and their candidates.

Example (``fixtures/candidates.toml``)::

    [harness]
    base_model = "embedded"        # or a local directory or a hub id (--ft-base-model overrides)
    corpus = "corpus.txt"          # text the embedded base's tokenizer and warm-up use
    seed = 0

    [suites.sentiment]
    task = "classification"        # or "generation"
    labels = ["positive", "negative"]
    train = "sentiment/train.jsonl"
    validation = "sentiment/validation.jsonl"
    eval = "sentiment/eval.jsonl"

    [suites.sentiment.candidates.lora]
    kind = "lora"
    params = { n_epochs = 4, r = 8, alpha = 16 }

Paths are relative to the spec file. Errors name the file and the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

from harness.errors import SpecError
from harness.protocol import DecodeParams

TASKS = ("classification", "generation")
SCORING = ("generate", "likelihood")
_SUITE_KEYS = {"task", "labels", "train", "validation", "eval", "decode", "scoring", "gate", "candidates",
               "metrics", "system", "label_aliases", "metric_options"}
METRIC_OPTIONS = {"rouge_tokenizer": ("default", "unicode"), "rouge_stemmer": (True, False),
                  "bleu_tokenize": ("13a", "intl", "char", "zh", "ja-mecab", "ko-mecab", "flores101", "none")}
_HARNESS_KEYS = {"base_model", "corpus", "seed", "batch_size", "tiny", "pricing", "torch_threads"}


@dataclass(frozen=True)
class CandidateSpec:
    """One candidate: its kind, training parameters and kind-specific options."""

    name: str
    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SuiteSpec:
    """One evaluation suite: task, data splits, decoding, gate settings and candidates."""

    name: str
    task: str
    train: Path | None
    validation: Path | None
    eval: Path
    labels: tuple[str, ...] = ()
    label_aliases: dict[str, str] = field(default_factory=dict)
    decode: DecodeParams = field(default_factory=DecodeParams)
    scoring: str = "generate"
    gate: dict[str, Any] = field(default_factory=dict)
    metrics: tuple[str, ...] = ()
    metric_options: dict[str, Any] = field(default_factory=dict)
    candidates: dict[str, CandidateSpec] = field(default_factory=dict)

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
    tiny: dict[str, Any] = field(default_factory=dict)
    pricing: dict[str, Any] = field(default_factory=dict)
    suites: dict[str, SuiteSpec] = field(default_factory=dict)

    def suite(self, name: str) -> SuiteSpec:
        try:
            return self.suites[name]
        except KeyError:
            known = ", ".join(sorted(self.suites)) or "none"
            raise SpecError(f"{self.path}: no suite {name!r} (declared: {known})") from None


def _require(table: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in table:
        raise SpecError(f"{where}: missing key {key!r}")
    value = table[key]
    if not isinstance(value, kind):
        expected = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise SpecError(f"{where}.{key}: expected {expected}, got {type(value).__name__} {value!r}")
    return value


def _unknown(table: dict[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(table) - allowed)
    if extra:
        raise SpecError(f"{where}: unknown key {extra[0]!r} (allowed: {', '.join(sorted(allowed))})")


def _path(base: Path, value: Any, where: str) -> Path:
    if not isinstance(value, str) or not value:
        raise SpecError(f"{where}: expected a file path string, got {value!r}")
    return (base / value).resolve()


def _decode(table: Any, where: str) -> DecodeParams:
    if table is None:
        return DecodeParams()
    if not isinstance(table, dict):
        raise SpecError(f"{where}: expected a table, got {table!r}")
    allowed = {"max_new_tokens", "temperature", "top_p", "seed", "stop"}
    _unknown(table, allowed, where)
    try:
        return DecodeParams(
            max_new_tokens=int(table.get("max_new_tokens", 16)),
            temperature=float(table.get("temperature", 0.0)),
            top_p=float(table.get("top_p", 1.0)),
            seed=int(table.get("seed", 0)),
            stop=tuple(str(s) for s in table.get("stop", ())),
        )
    except (TypeError, ValueError) as exc:
        raise SpecError(f"{where}: {exc}") from None


def _metric_options(table: Any, where: str) -> dict[str, Any]:
    if table is None:
        return {}
    if not isinstance(table, dict):
        raise SpecError(f"{where}: expected a table, got {table!r}")
    _unknown(table, set(METRIC_OPTIONS), where)
    for key, value in table.items():
        if value not in METRIC_OPTIONS[key]:
            allowed = ", ".join(repr(v) for v in METRIC_OPTIONS[key])
            raise SpecError(f"{where}.{key}: {value!r} is not one of {allowed}")
    return dict(table)


def _candidate(name: str, table: Any, where: str) -> CandidateSpec:
    if not isinstance(table, dict):
        raise SpecError(f"{where}: expected a table, got {table!r}")
    kind = _require(table, "kind", str, where)
    params = table.get("params", {})
    if not isinstance(params, dict):
        raise SpecError(f"{where}.params: expected a table, got {params!r}")
    options = {k: v for k, v in table.items() if k not in ("kind", "params")}
    return CandidateSpec(name=name, kind=kind, params=dict(params), options=options)


def _suite(name: str, table: Any, base: Path, where: str) -> SuiteSpec:
    if not isinstance(table, dict):
        raise SpecError(f"{where}: expected a table")
    _unknown(table, _SUITE_KEYS, where)
    task = _require(table, "task", str, where)
    if task not in TASKS:
        raise SpecError(f"{where}.task: {task!r} is not one of {', '.join(TASKS)}")
    labels = tuple(str(x) for x in table.get("labels", ()))
    if task == "classification" and len(labels) < 2:
        raise SpecError(f"{where}.labels: a classification suite needs at least two labels")
    scoring = table.get("scoring", "generate")
    if scoring not in SCORING:
        raise SpecError(f"{where}.scoring: {scoring!r} is not one of {', '.join(SCORING)}")
    candidates_table = table.get("candidates", {})
    if not isinstance(candidates_table, dict):
        raise SpecError(f"{where}.candidates: expected a table")
    candidates = {cname: _candidate(cname, ctable, f"{where}.candidates.{cname}")
                  for cname, ctable in candidates_table.items()}
    gate = table.get("gate", {})
    if not isinstance(gate, dict):
        raise SpecError(f"{where}.gate: expected a table")
    return SuiteSpec(
        name=name,
        task=task,
        train=_path(base, table["train"], f"{where}.train") if "train" in table else None,
        validation=_path(base, table["validation"], f"{where}.validation") if "validation" in table else None,
        eval=_path(base, _require(table, "eval", str, where), f"{where}.eval"),
        labels=labels,
        label_aliases={str(k): str(v) for k, v in table.get("label_aliases", {}).items()},
        decode=_decode(table.get("decode"), f"{where}.decode"),
        scoring=scoring,
        gate=gate,
        metrics=tuple(table.get("metrics", ())),
        metric_options=_metric_options(table.get("metric_options"), f"{where}.metric_options"),
        candidates=candidates,
    )


def _threads(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise SpecError(f"{where}: expected a positive integer, got {value!r}")
    return value


def load_spec(path: Path) -> HarnessSpec:
    """Parse and check the spec file; every error names the file and the offending key."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecError(f"{path}: candidate spec not found (set --ft-spec or ft_spec in pytest.ini)") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: not valid TOML: {exc}") from None
    base = path.parent.resolve()
    harness_table = raw.get("harness", {})
    if not isinstance(harness_table, dict):
        raise SpecError(f"{path}: [harness] must be a table")
    _unknown(harness_table, _HARNESS_KEYS, f"{path}: [harness]")
    suites_table = raw.get("suites", {})
    if not isinstance(suites_table, dict):
        raise SpecError(f"{path}: [suites] must be a table")
    suites = {name: _suite(name, table, base, f"{path}: suites.{name}") for name, table in suites_table.items()}
    corpus = harness_table.get("corpus")
    return HarnessSpec(
        path=path,
        base_model=str(harness_table.get("base_model", "embedded")),
        corpus=_path(base, corpus, f"{path}: harness.corpus") if corpus else None,
        seed=int(harness_table.get("seed", 0)),
        batch_size=int(harness_table.get("batch_size", 32)),
        torch_threads=_threads(harness_table.get("torch_threads"), f"{path}: harness.torch_threads"),
        tiny=dict(harness_table.get("tiny", {})),
        pricing=dict(harness_table.get("pricing", {})),
        suites=suites,
    )

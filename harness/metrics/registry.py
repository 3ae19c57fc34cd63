"""One table of metric facts: every metric a suite can name, its scale, direction, paired score,
how its aggregate is formed, the task it belongs to and the options it reads.

Everything else (the spec's checks, scoring, the gate's paired tests, the report's number
formatting and column order) reads these facts from here, so a metric is described once.

=============  ==============  =====  ===================  ==========  ==============================
metric         task            scale  per-example score    aggregate   options
=============  ==============  =====  ===================  ==========  ==============================
accuracy       classification  0–1    ``correct`` (0/1)    mean        —
exact_match    generation      0–1    ``exact_match`` 0/1  mean        —
bleu           generation      0–100  ``sentence_bleu``    corpus      ``bleu_tokenize`` (stats: ``bleu_stats``)
chrf, chrfpp   generation      0–100  ``sentence_chrf`` …  corpus      — (sacrebleu's chrF / chrF++, on request)
ter            generation      0–100  ``sentence_ter``     corpus      — (lower is better, on request)
rouge1/2/L     generation      0–100  same name            mean        ``rouge_tokenizer``, ``rouge_stemmer``
rougeLsum      generation      0–100  ``rougeLsum``        mean        ``rouge_tokenizer``, ``rouge_stemmer``
semscore       generation      0–1    ``semscore``         mean        ``embedding_model`` (graded)
f1_macro …     classification  0–1    —                    corpus      —
=============  ==============  =====  ===================  ==========  ==============================

A gate tolerance is on the metric's own scale (0.02 accuracy, 3.0 BLEU points). A corpus metric
names its :class:`~harness.metrics.corpus_metric.CorpusMetric`, which owns its per-example statistics
and how a sum of them is scored: intervals, the gate's paired bootstrap, slice tests and A/B
comparisons all go through it. This module imports nothing from the harness but the metric modules.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from harness.metrics.bleu_metric import CorpusBleu
from harness.metrics.chrf_ter_metric import CHRF, CHRF_PLUS_PLUS, TER
from harness.metrics.corpus_metric import CorpusMetric

CLASSIFICATION = "classification"
GENERATION = "generation"
TASKS = (CLASSIFICATION, GENERATION)
BINARY = "binary"
CONTINUOUS = "continuous"
MEAN = "mean"      # the aggregate is the mean of the per-example scores
CORPUS = "corpus"  # the aggregate is computed from corpus statistics (not a mean of examples)


@dataclass(frozen=True)
class MetricOption:
    """A suite ``metric_options`` key: the values it accepts and its default."""

    name: str
    choices: tuple[Any, ...]
    default: Any
    description: str = ""


@dataclass(frozen=True)
class MetricInfo:
    """What the harness knows about one metric."""

    name: str
    task: str                    # "classification" or "generation"
    scale: float                 # 1.0 (0–1) or 100.0 (0–100): the scale of values and tolerances
    higher_is_better: bool       # direction of improvement
    score: str | None            # key in EvalResult.per_example behind paired tests (None: none)
    score_kind: str | None       # "binary" or "continuous" (None without a per-example score)
    aggregate: str               # "mean" (of the per-example scores) or "corpus"
    default: bool                # computed when the suite lists no ``metrics``
    options: tuple[str, ...] = ()
    library: str = ""            # the library whose numbers the harness reproduces
    corpus: CorpusMetric | None = None  # corpus metrics: owns the per-example statistics and the
                                        # score of their sum (resampled by intervals and the gate)
    graded: bool = False         # scored by a model (the runner's graded step), not by pure text scoring

    @property
    def stats(self) -> str | None:
        """EvalResult.details key of the per-example sufficient statistics (corpus metrics only)."""
        return f"{self.name}_stats" if self.corpus is not None else None

    @property
    def sign(self) -> int:
        """+1 when higher is better, -1 otherwise: the gate tests ``sign * score`` so a drop is a loss."""
        return 1 if self.higher_is_better else -1

    @property
    def paired(self) -> bool:
        """True when per-example scores back the metric, so it can be gated."""
        return self.score is not None


_ROUGE_OPTIONS = ("rouge_tokenizer", "rouge_stemmer")


def _rouge(name: str) -> MetricInfo:
    return MetricInfo(name, GENERATION, 100.0, True, name, CONTINUOUS, MEAN, True, _ROUGE_OPTIONS,
                      "rouge-score")


def _class_level(name: str) -> MetricInfo:
    return MetricInfo(name, CLASSIFICATION, 1.0, True, None, None, CORPUS, True, (), "scikit-learn")


#: Every metric, paired ones first (the report's column order).
METRICS: dict[str, MetricInfo] = {m.name: m for m in (
    MetricInfo("accuracy", CLASSIFICATION, 1.0, True, "correct", BINARY, MEAN, True, (), "scikit-learn"),
    MetricInfo("exact_match", GENERATION, 1.0, True, "exact_match", BINARY, MEAN, True),
    MetricInfo("bleu", GENERATION, 100.0, True, "sentence_bleu", CONTINUOUS, CORPUS, True,
               ("bleu_tokenize",), "sacrebleu", corpus=CorpusBleu()),
    MetricInfo("chrf", GENERATION, 100.0, True, "sentence_chrf", CONTINUOUS, CORPUS, False, (), "sacrebleu",
               corpus=CHRF),
    MetricInfo("chrfpp", GENERATION, 100.0, True, "sentence_chrfpp", CONTINUOUS, CORPUS, False, (), "sacrebleu",
               corpus=CHRF_PLUS_PLUS),
    MetricInfo("ter", GENERATION, 100.0, False, "sentence_ter", CONTINUOUS, CORPUS, False, (), "sacrebleu",
               corpus=TER),
    _rouge("rouge1"), _rouge("rouge2"), _rouge("rougeL"), _rouge("rougeLsum"),
    MetricInfo("semscore", GENERATION, 1.0, True, "semscore", CONTINUOUS, MEAN, False,
               ("embedding_model",), "sentence-transformers (mean pooling, L2 norm, cosine)", graded=True),
    _class_level("f1_macro"), _class_level("f1_weighted"),
    _class_level("precision_macro"), _class_level("recall_macro"),
)}

#: Every ``metric_options`` key.
OPTIONS: dict[str, MetricOption] = {o.name: o for o in (
    MetricOption("bleu_tokenize", ("13a", "intl", "char", "zh", "ja-mecab", "ko-mecab", "flores101", "none"),
                 "13a", "sacrebleu's tokenizer for BLEU"),
    MetricOption("rouge_tokenizer", ("default", "unicode"), "default",
                 "rouge-score's tokenizer (Latin a-z0-9 only) or a Unicode word tokenizer (any script)"),
    MetricOption("rouge_stemmer", (True, False), True, "Porter stemming before ROUGE matching"),
    MetricOption("embedding_model", (), "minilm",
                 "the sentence-embedding model of semscore: the packaged all-MiniLM-L6-v2, a local "
                 "directory or a hub id (any string; no fixed choices)"),
)}

ROUGE_TYPES = tuple(name for name in METRICS if name.startswith("rouge"))


#: Graded metrics a suite declares by name, as ``<family>:<name>``: a custom scorer
#: (``scorer:brevity``), a judge (``judge:helpful``), people's labels (``human:lora_vs_base``).
#: Each is a per-example, continuous, mean-aggregated metric on a 0–1 (or −1…+1) scale.
GRADED_FAMILIES = ("scorer", "judge", "human")
_FAMILY_LIBRARY = {"scorer": "user code", "judge": "a judge model", "human": "people"}


def graded_family(name: str) -> str | None:
    """The family of a declared graded metric name (``scorer:x`` → ``scorer``), else None."""
    family, sep, rest = name.partition(":")
    return family if sep and rest and family in GRADED_FAMILIES else None


def is_graded(name: str) -> bool:
    """True for metrics scored by a model, user code or people (not by pure text scoring)."""
    return graded_family(name) is not None or (name in METRICS and METRICS[name].graded)


def is_known(name: str) -> bool:
    """A registry metric or a declared graded metric name."""
    return name in METRICS or graded_family(name) is not None


def info(name: str) -> MetricInfo:
    """The facts of metric ``name``; KeyError naming the known metrics otherwise."""
    family = graded_family(name)
    if family is not None:
        return MetricInfo(name, "any", 1.0, True, name, CONTINUOUS, MEAN, False, (), _FAMILY_LIBRARY[family],
                          graded=True)
    try:
        return METRICS[name]
    except KeyError:
        raise KeyError(f"unknown metric {name!r} (known: {', '.join(METRICS)})") from None


class _PairedScores(Mapping[str, tuple[str, str]]):
    """metric → (per-example score key, kind): the registry's paired metrics, and any declared graded
    metric on lookup (iteration yields the registry's, in table order)."""

    def __init__(self, table: dict[str, tuple[str, str]]) -> None:
        self._table = table

    def __getitem__(self, name: str) -> tuple[str, str]:
        if name in self._table:
            return self._table[name]
        if graded_family(name) is not None:
            return name, CONTINUOUS
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self._table or graded_family(name) is not None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)


def paired_in(names: Iterable[str]) -> list[str]:
    """The paired metrics among ``names``: the registry's in table order, then declared graded ones."""
    present = list(dict.fromkeys(names))
    static = [m for m, facts in METRICS.items() if facts.paired and m in present]
    return static + sorted(m for m in present if graded_family(m) is not None)


def score_key(name: str) -> str:
    """The per-example score key behind metric ``name`` (KeyError for a metric without one)."""
    score = info(name).score
    if score is None:
        raise KeyError(f"metric {name!r} has no per-example score")
    return score


def metrics_for(task: str) -> tuple[str, ...]:
    """Every metric a ``task`` suite can report, in table order."""
    return tuple(name for name, m in METRICS.items() if m.task == task)


def default_metrics(task: str) -> tuple[str, ...]:
    """The metrics a ``task`` suite reports when it lists none."""
    return tuple(name for name, m in METRICS.items() if m.task == task and m.default)


def paired_score_table() -> Mapping[str, tuple[str, str]]:
    """metric → (per-example score key, score kind) for every metric with per-example scores
    (declared graded metrics included on lookup)."""
    return _PairedScores({name: (m.score, m.score_kind) for name, m in METRICS.items()
                          if m.score is not None and m.score_kind is not None})


def graded_metrics() -> frozenset[str]:
    """Metrics scored by a model in the runner's graded step (pure text scoring leaves them out)."""
    return frozenset(name for name, m in METRICS.items() if m.graded)


def corpus_stats_table() -> dict[str, str]:
    """metric → details key of its per-example sufficient statistics (corpus-level metrics)."""
    return {name: m.stats for name, m in METRICS.items() if m.stats is not None}


def corpus_metric(name: str) -> CorpusMetric | None:
    """The corpus metric behind ``name`` (None for a mean of per-example scores or an unknown name)."""
    found = METRICS.get(name)
    return found.corpus if found is not None else None


def corpus_options(name: str, options: dict[str, Any] | None) -> dict[str, Any]:
    """The resolved values of the options metric ``name`` reads (suite's value, else default)."""
    return {o: option_value(options, o) for o in METRICS[name].options}


def percent_scale() -> frozenset[str]:
    """Metrics reported on a 0–100 scale."""
    return frozenset(name for name, m in METRICS.items() if m.scale == 100.0)


def mean_of_scores() -> frozenset[str]:
    """Paired metrics whose aggregate is the mean of their per-example scores."""
    return frozenset(name for name, m in METRICS.items() if m.paired and m.aggregate == MEAN)


def options_for(metrics: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The ``metric_options`` keys any of ``metrics`` reads."""
    return tuple(dict.fromkeys(o for name in metrics for o in info(name).options))


def option_value(options: dict[str, Any] | None, name: str) -> Any:
    """The suite's value of option ``name``, else its default."""
    return (options or {}).get(name, OPTIONS[name].default)

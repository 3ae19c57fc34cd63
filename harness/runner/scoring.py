"""Turn predictions into the EvalResult's metrics, per-example scores and signatures (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from harness.metrics import classification, exact_match, rouge
from harness.metrics.labels import UNPARSED, normalize_label
from harness.metrics.registry import (
    CLASSIFICATION,
    GENERATION,
    ROUGE_TYPES,
    corpus_metric,
    corpus_options,
    default_metrics,
    info,
    metrics_for,
    option_value,
    score_key,
)

DEFAULT_GENERATION_METRICS = default_metrics(GENERATION)
DEFAULT_CLASSIFICATION_METRICS = default_metrics(CLASSIFICATION)


def score_classification(predictions: Sequence[str], references: Sequence[str], labels: Sequence[str],
                         aliases: Mapping[str, str] | None = None, wanted: Sequence[str] = ()):
    """Accuracy, macro / weighted F1 and the scikit-learn report over normalised labels.

    ``wanted`` (the suite's ``metrics``) restricts the aggregates; by default all are reported.
    """

    parsed = [normalize_label(p, labels, aliases) for p in predictions]
    truth = [normalize_label(r, labels, aliases) or r for r in references]
    result = classification(truth, parsed, labels=list(labels))
    computed = {
        "accuracy": result.accuracy,
        "f1_macro": result.macro_f1,
        "f1_weighted": result.weighted_f1,
        "precision_macro": result.macro_precision,
        "recall_macro": result.macro_recall,
    }
    chosen = tuple(wanted) or DEFAULT_CLASSIFICATION_METRICS
    metrics = {name: computed[name] for name in DEFAULT_CLASSIFICATION_METRICS if name in chosen}
    per_example = {score_key("accuracy"): [float(c) for c in result.correct]}
    signature = result.signature
    signatures = {name: signature for name in metrics}
    details: dict[str, Any] = {
        "labels": list(labels),
        **({"label_aliases": dict(aliases)} if aliases else {}),  # rescoring saved outputs needs them
        "parsed": parsed,
        "unparsed": sum(1 for p in parsed if p == UNPARSED),
        "confusion_matrix": result.confusion_matrix,
        "classification_report": result.report,
    }
    return metrics, per_example, signatures, details


def score_generation(predictions: Sequence[str], references: Sequence[str], wanted: Sequence[str] = (),
                     options: Mapping[str, Any] | None = None):
    """Corpus metrics (BLEU, chrF, TER: sacrebleu), ROUGE F-measures (rouge-score) and exact match,
    with per-example scores.

    ``options`` (the suite's ``metric_options``): ``rouge_tokenizer`` "default" (rouge-score's,
    Latin only) or "unicode" (any script), ``rouge_stemmer``, ``bleu_tokenize`` (sacrebleu's).
    Every corpus metric of the registry is scored by its own :class:`CorpusMetric`, which also
    keeps each example's sufficient statistics for corpus-level tests.
    """
    options = dict(options or {})

    wanted = tuple(wanted) or DEFAULT_GENERATION_METRICS
    metrics: dict[str, float] = {}
    per_example: dict[str, list[float]] = {}
    signatures: dict[str, str] = {}
    corpus_stats: dict[str, list[list[float]]] = {}
    for name in (m for m in metrics_for(GENERATION) if m in wanted):
        corpus = corpus_metric(name)
        if corpus is None:
            continue
        scored = corpus.score(list(predictions), list(references), corpus_options(name, options))
        metrics[name] = scored.score
        per_example[score_key(name)] = list(scored.sentence_scores)
        signatures[name] = scored.signature
        corpus_stats[str(info(name).stats)] = scored.stats.tolist()  # corpus-level tests resample these
    rouge_types = [t for t in ROUGE_TYPES if t in wanted]
    if rouge_types:
        scores = rouge(list(predictions), list(references), rouge_types=rouge_types,
                       tokenizer=option_value(options, "rouge_tokenizer"),
                       use_stemmer=bool(option_value(options, "rouge_stemmer")))
        for t in rouge_types:
            typed = scores.by_type[t]
            per_example[score_key(t)] = [100.0 * f for f in typed.fmeasure]
            metrics[t] = 100.0 * typed.score
            signatures[t] = typed.signature
    if "exact_match" in wanted:
        em = exact_match(list(predictions), list(references))
        per_example[score_key("exact_match")] = [float(x) for x in em.scores]
        metrics["exact_match"] = float(sum(per_example[score_key("exact_match")])) / max(1, len(predictions))
        signatures["exact_match"] = em.signature
    details: dict[str, Any] = {"metric_options": options, **corpus_stats}
    return metrics, per_example, signatures, details


def score_task(task: str, predictions: Sequence[str], references: Sequence[str], *,
               labels: Sequence[str] = (), aliases: Mapping[str, str] | None = None,
               metrics: Sequence[str] = (), options: Mapping[str, Any] | None = None):
    """Score by task: labels for ``classification``, text metrics otherwise (one dispatch for all)."""
    if task == CLASSIFICATION:
        return score_classification(predictions, references, labels, aliases, metrics)
    return score_generation(predictions, references, metrics, options)

"""Metrics as pure functions: classification, BLEU, ROUGE, exact match and format checks.

Every function takes plain values and returns a result object whose numbers equal the
reference library's (scikit-learn, sacrebleu, rouge-score, jsonschema) and whose
``signature`` string records how they were computed. :mod:`harness.metrics.registry` holds the
facts about each metric a suite can name (scale, direction, paired score, aggregate, options).
"""

from harness.metrics._common import MetricWarning
from harness.metrics.bleu_metric import (
    STATS_COLUMNS,
    BleuResult,
    SentenceBleuResult,
    bleu,
    corpus_bleu_from_stats,
    sentence_bleu,
)
from harness.metrics.classification_metric import ClassificationResult, ClassScores, classification
from harness.metrics.per_example import PerExampleResult
from harness.metrics.registry import METRICS, MetricInfo
from harness.metrics.rouge_metric import (
    DEFAULT_ROUGE_TYPES,
    RougeResult,
    RougeTokenizationWarning,
    RougeTypeResult,
    rouge,
)
from harness.metrics.structured import json_schema_match, json_valid
from harness.metrics.text_match import exact_match, regex_match

__all__ = [
    "DEFAULT_ROUGE_TYPES",
    "METRICS",
    "STATS_COLUMNS",
    "BleuResult",
    "ClassScores",
    "ClassificationResult",
    "MetricInfo",
    "MetricWarning",
    "PerExampleResult",
    "RougeResult",
    "RougeTokenizationWarning",
    "RougeTypeResult",
    "SentenceBleuResult",
    "bleu",
    "classification",
    "corpus_bleu_from_stats",
    "exact_match",
    "json_schema_match",
    "json_valid",
    "regex_match",
    "rouge",
    "sentence_bleu",
]

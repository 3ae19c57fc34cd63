"""ROUGE through rouge-score's ``RougeScorer``, with tokenisation checks and parallel scoring.

Numbers equal ``RougeScorer(rouge_types, use_stemmer).score(reference, prediction)`` per
example (``score_multi`` when an example has several references); the aggregate of each
type is the mean over examples. ``rougeLsum`` splits summaries on newlines, as rouge-score
does by default.

Two additions keep the numbers honest and fast:

* rouge-score's default tokenizer keeps only ``a-z0-9``, so non-Latin text scores 0
  silently. When tokenisation turns a text that has letters or digits into no tokens at
  all, a ``RougeTokenizationWarning`` names the affected examples; ``tokenizer="unicode"``
  selects :class:`~harness.metrics.rouge_tokenizers.UnicodeTokenizer` instead.
* Tokenisation is cached per text and stemming per word, and above ``parallel_threshold``
  examples the examples are scored in chunks in worker processes. Each chunk runs the
  same function as the serial path, so the results are identical.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import pickle
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from harness.metrics._common import (
    MetricWarning,
    check_same_length,
    check_strings,
    library_version,
    mean,
    normalize_references,
    references_count_label,
    yes_no,
)

DEFAULT_ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")
PARALLEL_THRESHOLD = 2000


class RougeTokenizationWarning(MetricWarning):
    """Tokenisation removed every token from a non-empty text, so its ROUGE is 0."""

    def __init__(self, message: str, *, predictions: Sequence[int] = (),
                 references: Sequence[int] = ()) -> None:
        super().__init__(message)
        self.predictions = list(predictions)
        self.references = list(references)


@dataclass(frozen=True)
class RougeTypeResult:
    """One ROUGE type: per-example precision, recall and F-measure (0–1) and their means."""

    rouge_type: str
    precision: list[float]
    recall: list[float]
    fmeasure: list[float]
    signature: str

    @property
    def score(self) -> float:
        """Mean F-measure over the examples (the reported ROUGE score, 0–1)."""
        return mean(self.fmeasure)

    @property
    def mean_precision(self) -> float:
        """Mean precision over the examples."""
        return mean(self.precision)

    @property
    def mean_recall(self) -> float:
        """Mean recall over the examples."""
        return mean(self.recall)


@dataclass(frozen=True)
class RougeResult:
    """ROUGE scores by type (``result["rougeL"]``) plus the examples tokenised to nothing."""

    by_type: dict[str, RougeTypeResult]
    signature: str
    emptied_predictions: list[int]
    emptied_references: list[int]

    def __getitem__(self, rouge_type: str) -> RougeTypeResult:
        if rouge_type not in self.by_type:
            raise KeyError(f"ROUGE type {rouge_type!r} was not computed; computed: "
                           f"{', '.join(self.by_type)}")
        return self.by_type[rouge_type]

    @property
    def n(self) -> int:
        """Number of examples scored."""
        return len(next(iter(self.by_type.values())).fmeasure)

    @property
    def rouge1(self) -> float:
        """Mean ROUGE-1 F-measure."""
        return self["rouge1"].score

    @property
    def rouge2(self) -> float:
        """Mean ROUGE-2 F-measure."""
        return self["rouge2"].score

    @property
    def rougeL(self) -> float:
        """Mean ROUGE-L F-measure."""
        return self["rougeL"].score

    @property
    def rougeLsum(self) -> float:
        """Mean ROUGE-Lsum F-measure."""
        return self["rougeLsum"].score

    def as_dict(self) -> dict[str, float]:
        """Mean F-measure by ROUGE type."""
        return {name: result.score for name, result in self.by_type.items()}


def _build_tokenizer(spec: Any, use_stemmer: bool):
    """The tokenizer for a spec: "default", "unicode" or a rouge-score ``Tokenizer``."""
    from harness.metrics.rouge_tokenizers import (  # deferred: imports nltk and rouge_score
        CachingTokenizer,
        DefaultTokenizer,
        UnicodeTokenizer,
    )

    if spec == "default":
        inner = DefaultTokenizer(use_stemmer)
    elif spec == "unicode":
        inner = UnicodeTokenizer(use_stemmer)
    else:
        inner = spec
    return CachingTokenizer(inner)


def _has_word_characters(text: str) -> bool:
    return any(char.isalnum() for char in text)


def _score_chunk(rouge_types: tuple[str, ...], tokenizer_spec: Any, use_stemmer: bool,
                 predictions: Sequence[str], references: Sequence[Sequence[str]],
                 offset: int) -> tuple[list[list[tuple[float, float, float]]], list[int], list[int]]:
    """Score one chunk: per example, one (precision, recall, fmeasure) per ROUGE type.

    Also returns the global indices of predictions / references that tokenised to nothing
    although they contain letters or digits.
    """
    from rouge_score import rouge_scorer

    tokenizer = _build_tokenizer(tokenizer_spec, use_stemmer)
    scorer = rouge_scorer.RougeScorer(list(rouge_types), use_stemmer=use_stemmer,
                                      tokenizer=tokenizer)
    rows: list[list[tuple[float, float, float]]] = []
    emptied_predictions: list[int] = []
    emptied_references: list[int] = []
    for index, (prediction, refs) in enumerate(zip(predictions, references, strict=True)):
        if len(refs) == 1:
            scores = scorer.score(refs[0], prediction)
        else:
            scores = scorer.score_multi(refs, prediction)
        rows.append([(float(scores[t].precision), float(scores[t].recall),
                      float(scores[t].fmeasure)) for t in rouge_types])
        if not tokenizer.tokenize(prediction) and _has_word_characters(prediction):
            emptied_predictions.append(offset + index)
        if any(not tokenizer.tokenize(ref) and _has_word_characters(ref) for ref in refs):
            emptied_references.append(offset + index)
    return rows, emptied_predictions, emptied_references


def _score_chunk_star(args: tuple) -> tuple:
    return _score_chunk(*args)


def available_cpus() -> int:
    """CPUs this process may run on (the default number of ROUGE worker processes)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - platforms without affinity
        return os.cpu_count() or 1


def _picklable(value: Any) -> bool:
    try:
        pickle.dumps(value)
    except Exception:
        return False
    return True


def _tokenizer_label(spec: Any) -> str:
    if isinstance(spec, str):
        return spec
    return f"custom({type(spec).__qualname__})"


def _check_rouge_types(rouge_types: Sequence[str]) -> tuple[str, ...]:
    import re

    types = tuple(rouge_types)
    if not types:
        raise ValueError("rouge_types is empty")
    for name in types:
        if name not in ("rougeL", "rougeLsum") and not re.fullmatch(r"rouge[1-9]", name):
            raise ValueError(f"unknown ROUGE type {name!r}; use rouge1..rouge9, rougeL, rougeLsum")
    if len(set(types)) != len(types):
        raise ValueError(f"rouge_types has duplicates: {types!r}")
    return types


def rouge(predictions: Sequence[str], references: Sequence[str] | Sequence[Sequence[str]], *,
          use_stemmer: bool = True, tokenizer: Any = None,
          rouge_types: Sequence[str] = DEFAULT_ROUGE_TYPES, workers: int | None = None,
          parallel_threshold: int = PARALLEL_THRESHOLD) -> RougeResult:
    """ROUGE F-measure (and precision / recall) per example and on average, as rouge-score.

    ``tokenizer`` is ``None`` / ``"default"`` (rouge-score's, exact parity), ``"unicode"``
    (keeps every script) or a ``rouge_score.tokenizers.Tokenizer`` instance (used as given;
    it must be picklable to be used in worker processes). With at least
    ``parallel_threshold`` examples and more than one worker (default: the CPUs available),
    examples are scored in worker processes.
    """
    from rouge_score import tokenizers

    hypotheses = check_strings(predictions, "predictions")
    n = check_same_length(hypotheses, references)
    per_example = normalize_references(references)
    types = _check_rouge_types(rouge_types)
    spec: Any = "default" if tokenizer is None else tokenizer
    if isinstance(spec, str) and spec not in ("default", "unicode"):
        raise ValueError(f"unknown ROUGE tokenizer {spec!r}; use 'default', 'unicode' or a "
                         "rouge_score.tokenizers.Tokenizer instance")
    if not isinstance(spec, (str, tokenizers.Tokenizer)):
        raise ValueError("tokenizer must be 'default', 'unicode' or a "
                         f"rouge_score.tokenizers.Tokenizer instance, got {type(spec).__name__}")

    n_workers = min(available_cpus() if workers is None else max(1, workers), n)
    if n >= parallel_threshold and n_workers > 1 and _picklable(spec):
        rows, emptied_predictions, emptied_references = _score_parallel(
            types, spec, use_stemmer, hypotheses, per_example, n_workers)
    else:
        rows, emptied_predictions, emptied_references = _score_chunk(
            types, spec, use_stemmer, hypotheses, per_example, 0)

    if emptied_predictions or emptied_references:
        _warn_emptied(emptied_predictions, emptied_references, spec)

    common = (f"|stem:{yes_no(use_stemmer)}|tok:{_tokenizer_label(spec)}"
              f"|nrefs:{references_count_label(per_example)}"
              f"|rouge_score:{library_version('rouge-score')}")
    if use_stemmer:
        common += f"|nltk:{library_version('nltk')}"
    by_type = {
        name: RougeTypeResult(
            rouge_type=name,
            precision=[row[k][0] for row in rows],
            recall=[row[k][1] for row in rows],
            fmeasure=[row[k][2] for row in rows],
            signature=f"rouge:{name[5:]}{common}",
        )
        for k, name in enumerate(types)
    }
    signature = f"rouge:{'+'.join(name[5:] for name in types)}{common}"
    return RougeResult(by_type=by_type, signature=signature,
                       emptied_predictions=emptied_predictions,
                       emptied_references=emptied_references)


def _score_parallel(types: tuple[str, ...], spec: Any, use_stemmer: bool,
                    hypotheses: list[str], per_example: list[list[str]], n_workers: int):
    """Score contiguous chunks in worker processes and concatenate them in order."""
    n = len(hypotheses)
    n_chunks = min(n, n_workers * 2)  # few chunks: each builds its own tokenisation cache
    bounds = [n * k // n_chunks for k in range(n_chunks + 1)]
    jobs = [(types, spec, use_stemmer, hypotheses[lo:hi], per_example[lo:hi], lo)
            for lo, hi in itertools.pairwise(bounds) if hi > lo]
    # fork (Linux) starts workers in milliseconds with rouge-score already imported and needs
    # no ``if __name__ == "__main__"`` guard in the caller; spawn elsewhere.
    import rouge_score.rouge_scorer  # noqa: F401 - imported once here, inherited by workers

    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    rows: list = []
    emptied_predictions: list[int] = []
    emptied_references: list[int] = []
    with ProcessPoolExecutor(n_workers, mp_context=multiprocessing.get_context(method)) as pool:
        for chunk_rows, chunk_pred, chunk_ref in pool.map(_score_chunk_star, jobs):
            rows.extend(chunk_rows)
            emptied_predictions.extend(chunk_pred)
            emptied_references.extend(chunk_ref)
    return rows, emptied_predictions, emptied_references


def _warn_emptied(emptied_predictions: list[int], emptied_references: list[int],
                  spec: Any) -> None:
    def listing(indices: list[int]) -> str:
        shown = ", ".join(str(i) for i in indices[:10])
        more = f" and {len(indices) - 10} more" if len(indices) > 10 else ""
        return f"{shown}{more}"

    parts = []
    if emptied_predictions:
        parts.append(f"predictions at index {listing(emptied_predictions)}")
    if emptied_references:
        parts.append(f"references at index {listing(emptied_references)}")
    hint = (" rouge-score's default tokenizer keeps only a-z and 0-9; pass tokenizer='unicode' "
            "for other scripts." if spec == "default" else "")
    message = (f"ROUGE tokenisation removed every token from {' and '.join(parts)} although "
               f"they contain letters or digits, so they score 0.{hint}")
    warnings.warn(RougeTokenizationWarning(message, predictions=emptied_predictions,
                                           references=emptied_references), stacklevel=3)

"""Benchmark: harness ROUGE / BLEU against the plain per-example loops, with identical results.

``run(n)`` builds ``n`` synthetic (prediction, reference) sentence pairs deterministically,
times rouge-score's per-example loop against ``harness.metrics.rouge`` (tokenisation cache,
memoised stemming, worker processes above the size threshold) and sacrebleu's per-sentence
loop against ``harness.metrics.sentence_bleu``, and sacrebleu's corpus BLEU plus that loop
against one ``harness.metrics.bleu`` call whose statistics give both the corpus and the
per-example scores. It checks that the numbers are identical and returns wall and CPU timings and their ratios (CPU time
counts worker processes too, so it stays meaningful on a busy machine).

    python -m bench.metrics [n]
"""

from __future__ import annotations

import random
import sys
import time

from harness.jsonio import strict_dumps

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")
_ONSETS = ["b", "c", "d", "f", "g", "h", "l", "m", "n", "p", "r", "s", "t", "v", "st", "tr", "pl"]
_NUCLEI = ["a", "e", "i", "o", "u", "ea", "ou"]
_CODAS = ["", "", "n", "r", "s", "t", "ng", "ck"]
_SUFFIXES = ["", "", "", "s", "ed", "ing", "ly", "ness", "ation"]


def _vocabulary(rng: random.Random, size: int) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        stem = "".join(rng.choice(_ONSETS) + rng.choice(_NUCLEI) + rng.choice(_CODAS)
                       for _ in range(rng.randint(1, 3)))
        words.add(stem + rng.choice(_SUFFIXES))
    return sorted(words)


def build_pairs(n: int = 10_000, seed: int = 0) -> tuple[list[str], list[str]]:
    """``n`` (prediction, reference) pairs: Zipf-distributed words, predictions edited from refs."""
    rng = random.Random(seed)
    vocabulary = _vocabulary(rng, 5000)
    weights = [1.0 / (rank + 1) for rank in range(len(vocabulary))]
    predictions: list[str] = []
    references: list[str] = []
    for index in range(n):
        reference = rng.choices(vocabulary, weights=weights, k=rng.randint(8, 40))
        prediction = []
        for word in reference:
            roll = rng.random()
            if roll < 0.15:
                continue  # dropped
            prediction.append(rng.choices(vocabulary, weights=weights)[0] if roll < 0.35 else word)
            if rng.random() < 0.05:
                prediction.append(rng.choice(vocabulary))  # inserted
        ref_text = " ".join(reference).capitalize() + "."
        pred_text = " ".join(prediction).capitalize() + "."
        if index % 5 == 0:  # some two-sentence summaries for rougeLsum
            ref_text = ref_text.replace(" ", ".\n", 1)
            pred_text = pred_text.replace(" ", ".\n", 1)
        predictions.append(pred_text)
        references.append(ref_text)
    return predictions, references


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (worker processes included)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return time.process_time()
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _timed(timings: dict[str, float], name: str, function, *args, **kwargs):
    """Call ``function``; record its wall time as ``name_s`` and CPU time as ``name_cpu_s``."""
    cpu, start = _cpu_seconds(), time.perf_counter()
    result = function(*args, **kwargs)
    timings[f"{name}_s"] = time.perf_counter() - start
    timings[f"{name}_cpu_s"] = _cpu_seconds() - cpu
    return result


def run(n: int = 10_000) -> dict[str, float]:
    """Time harness ROUGE / BLEU against the per-example loops on ``n`` pairs; check equality."""
    import sacrebleu
    from rouge_score import rouge_scorer

    from harness.metrics import bleu, rouge, sentence_bleu
    from harness.metrics.rouge_metric import available_cpus

    predictions, references = build_pairs(n)
    t: dict[str, float] = {}

    def rouge_loop():
        scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
        return [scorer.score(r, p) for p, r in zip(predictions, references, strict=True)]

    loop_scores = _timed(t, "rouge_per_example_loop", rouge_loop)
    serial = _timed(t, "rouge_harness_serial", rouge, predictions, references, workers=1)
    harness_rouge = _timed(t, "rouge_harness", rouge, predictions, references)
    for rouge_type in ROUGE_TYPES:
        expected = [scores[rouge_type].fmeasure for scores in loop_scores]
        if serial[rouge_type].fmeasure != expected or harness_rouge[rouge_type].fmeasure != expected:
            raise AssertionError(f"{rouge_type}: harness scores differ from rouge-score's loop")

    def bleu_loop():
        return [sacrebleu.sentence_bleu(p, [r]).score
                for p, r in zip(predictions, references, strict=True)]

    def bleu_both():
        corpus = bleu(predictions, references)
        return corpus, corpus.sentence_bleu()

    loop_bleu = _timed(t, "bleu_sentence_loop", bleu_loop)
    harness_sentence = _timed(t, "bleu_harness_sentence", sentence_bleu, predictions, references)
    corpus_theirs = _timed(t, "bleu_corpus_sacrebleu", sacrebleu.corpus_bleu, predictions,
                           [references])
    corpus_ours, sentence_ours = _timed(t, "bleu_corpus_and_sentence_harness", bleu_both)
    if harness_sentence.scores != loop_bleu or sentence_ours.scores != loop_bleu:
        raise AssertionError("sentence BLEU differs from sacrebleu's per-sentence loop")
    if corpus_ours.score != corpus_theirs.score:
        raise AssertionError("corpus BLEU differs from sacrebleu.corpus_bleu")

    both_theirs = t["bleu_corpus_sacrebleu_s"] + t["bleu_sentence_loop_s"]
    both_theirs_cpu = t["bleu_corpus_sacrebleu_cpu_s"] + t["bleu_sentence_loop_cpu_s"]
    return {
        "n": float(n),
        "cpus": float(available_cpus()),
        **t,
        "rouge_speedup": t["rouge_per_example_loop_s"] / t["rouge_harness_s"],
        "rouge_serial_speedup": t["rouge_per_example_loop_s"] / t["rouge_harness_serial_s"],
        "rouge_cpu_ratio": t["rouge_per_example_loop_cpu_s"] / t["rouge_harness_cpu_s"],
        "bleu_sentence_speedup": t["bleu_sentence_loop_s"] / t["bleu_harness_sentence_s"],
        "bleu_corpus_and_sentence_sacrebleu_s": both_theirs,
        "bleu_corpus_and_sentence_speedup": both_theirs / t["bleu_corpus_and_sentence_harness_s"],
        "bleu_corpus_and_sentence_cpu_ratio":
            both_theirs_cpu / t["bleu_corpus_and_sentence_harness_cpu_s"],
        "rouge_lsum_mean_f": harness_rouge.rougeLsum,
        "bleu_corpus_score": corpus_ours.score,
    }


def main(argv: list[str] | None = None) -> int:
    """Print ``run(n)`` as JSON; ``n`` is the optional first argument."""
    args = sys.argv[1:] if argv is None else argv
    n = int(args[0]) if args else 10_000
    print(strict_dumps(run(n), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

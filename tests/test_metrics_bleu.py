"""BLEU equals sacrebleu: corpus, sentence, multi-reference, and from re-added statistics."""

from __future__ import annotations

import numpy as np
import pytest
import sacrebleu
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.metrics import STATS_COLUMNS, bleu, corpus_bleu_from_stats, sentence_bleu

WORDS = ["the", "cat", "sat", "on", "mat", "a", "dog", "ran", "quickly", "models", "evaluate",
         "Hello", "world", "it's", "U.S.", "3.14", "1,000", "e-mail", "naïve", "café", "über",
         "Привет", "мир", "你好", "世界", "مرحبا", "!", "?", "...", ",", "(", ")", "\"", "--", "&"]

sentence = st.lists(st.sampled_from(WORDS), min_size=0, max_size=14).map(" ".join)
odd_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)
any_sentence = st.one_of(sentence, sentence, odd_text)
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def corpus(draw, multi: bool):
    n = draw(st.integers(1, 8))
    predictions = draw(st.lists(any_sentence, min_size=n, max_size=n))
    if multi:
        references = draw(st.lists(st.lists(any_sentence, min_size=1, max_size=3), min_size=n,
                                   max_size=n))
    else:
        references = draw(st.lists(any_sentence, min_size=n, max_size=n))
    return predictions, references


def streams(references):
    """sacrebleu's layout: one stream per reference slot, None where an example has fewer."""
    per_example = [[r] if isinstance(r, str) else list(r) for r in references]
    width = max(len(r) for r in per_example)
    return [[refs[k] if k < len(refs) else None for refs in per_example] for k in range(width)]


@SETTINGS
@given(data=st.one_of(corpus(multi=False), corpus(multi=True)))
def test_corpus_bleu_equals_sacrebleu(data):
    predictions, references = data
    ours = bleu(predictions, references)
    theirs = sacrebleu.corpus_bleu(predictions, streams(references))
    assert ours.score == pytest.approx(theirs.score, abs=1e-9)
    assert ours.precisions == pytest.approx(theirs.precisions, abs=1e-9)
    assert ours.bp == pytest.approx(theirs.bp, abs=1e-12)
    assert (ours.sys_len, ours.ref_len) == (theirs.sys_len, theirs.ref_len)
    assert ours.stats.shape == (len(predictions), len(STATS_COLUMNS))
    # The corpus score is a function of the summed per-example statistics.
    assert corpus_bleu_from_stats(ours.stats.sum(axis=0)) == pytest.approx(theirs.score, abs=1e-9)
    assert list(ours.stats.sum(axis=0)[2:6]) == list(theirs.counts)
    assert list(ours.stats.sum(axis=0)[6:10]) == list(theirs.totals)


@SETTINGS
@given(data=st.one_of(corpus(multi=False), corpus(multi=True)))
def test_sentence_bleu_equals_sacrebleu(data):
    predictions, references = data
    ours = sentence_bleu(predictions, references)
    for prediction, refs, score in zip(predictions, references, ours.scores, strict=True):
        refs = [refs] if isinstance(refs, str) else refs
        assert score == pytest.approx(sacrebleu.sentence_bleu(prediction, refs).score, abs=1e-9)
    assert ours.mean == pytest.approx(np.mean(ours.scores), abs=1e-9)
    # The corpus result's statistics give the same per-example scores without re-tokenising.
    from_corpus = bleu(predictions, references).sentence_bleu()
    assert from_corpus.scores == ours.scores
    assert from_corpus.signature == ours.signature


@SETTINGS
@given(left=corpus(multi=False), right=corpus(multi=False))
def test_summed_statistics_of_two_parts_equal_sacrebleu_on_the_union(left, right):
    predictions = left[0] + right[0]
    references = left[1] + right[1]
    part_a, part_b = bleu(*left), bleu(*right)
    summed = part_a.stats.sum(axis=0) + part_b.stats.sum(axis=0)
    union = sacrebleu.corpus_bleu(predictions, [references]).score
    assert corpus_bleu_from_stats(summed) == pytest.approx(union, abs=1e-9)


@SETTINGS
@given(data=corpus(multi=True), seed=st.integers(0, 2**32 - 1))
def test_resampled_scores_equal_sacrebleu_on_the_resampled_corpus(data, seed):
    predictions, references = data
    result = bleu(predictions, references)
    rng = np.random.default_rng(seed)
    indices = rng.integers(0, len(predictions), (3, len(predictions)))
    counts = np.stack([np.bincount(row, minlength=len(predictions)) for row in indices])
    scores = result.resampled_scores(counts)
    for row, score in zip(indices, scores, strict=True):
        picked_refs = [references[i] for i in row]
        expected = sacrebleu.corpus_bleu([predictions[i] for i in row], streams(picked_refs))
        assert score == pytest.approx(expected.score, abs=1e-9)


def test_signature_is_sacrebleus_own():
    result = bleu(["the cat sat"], ["the cat sat down"])
    metric = sacrebleu.BLEU()
    metric.corpus_score(["the cat sat"], [["the cat sat down"]])
    expected = metric.get_signature().format()
    assert result.signature.startswith("bleu:corpus|nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp")
    assert result.signature.endswith(f"|sacrebleu:{sacrebleu.__version__}")
    assert result.signature.replace("bleu:corpus|", "").replace("sacrebleu:", "version:") \
        == expected
    assert "eff:yes" in sentence_bleu(["a"], ["a"]).signature
    assert "nrefs:var" in bleu(["a", "b"], [["a"], ["b", "c"]]).signature


def test_lowercase_and_tokenizer_options_reach_sacrebleu():
    predictions, references = ["The CAT sat"], ["the cat sat"]
    lowered = bleu(predictions, references, lowercase=True)
    assert lowered.score == pytest.approx(
        sacrebleu.corpus_bleu(predictions, [references], lowercase=True).score)
    assert "case:lc" in lowered.signature
    chars = bleu(predictions, references, tokenize="char")
    assert chars.score == pytest.approx(
        sacrebleu.corpus_bleu(predictions, [references], tokenize="char").score)
    with pytest.raises(ValueError, match="unknown sacrebleu tokenizer 'nope'"):
        bleu(predictions, references, tokenize="nope")


def test_empty_predictions_score_zero_without_error():
    result = bleu(["", ""], ["a reference", "another one"])
    assert result.score == 0.0
    assert sentence_bleu(["", "x"], ["y", "x"]).scores[0] == 0.0


def test_bad_input_names_the_problem():
    with pytest.raises(ValueError, match="3 predictions vs 2 references"):
        bleu(["a", "b", "c"], ["a", "b"])
    with pytest.raises(ValueError, match="no examples"):
        bleu([], [])
    with pytest.raises(ValueError, match=r"references\[1\] is an empty list"):
        bleu(["a", "b"], [["a"], []])
    with pytest.raises(ValueError, match=r"predictions\[1\] must be a string"):
        bleu(["a", None], ["a", "b"])
    with pytest.raises(ValueError, match=r"references\[0\]\[1\] must be a string"):
        sentence_bleu(["a"], [["a", 3]])
    with pytest.raises(ValueError, match="shape"):
        corpus_bleu_from_stats([1, 2, 3])

"""ROUGE equals rouge-score; non-Latin text is detected; the Unicode tokenizer; parallel == serial."""

from __future__ import annotations

import math
import pickle
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rouge_score import rouge_scorer, tokenizers

from harness.metrics import RougeTokenizationWarning, rouge
from harness.metrics.rouge_tokenizers import UnicodeTokenizer

TYPES = ["rouge1", "rouge2", "rougeL", "rougeLsum"]
WORDS = ["the", "cats", "cat", "running", "runs", "ran", "quickly", "quick", "evaluation",
         "evaluated", "models", "model", "a", "is", "on", "mat", "generously", "2024", "3.5",
         "it's", "don't", "e-mail", "U.S.A.", "!", "?", ",", "--", "(x)", "naïve", "café",
         "\n", "\n", "Привет", "你好", "世界"]
text = st.lists(st.sampled_from(WORDS), max_size=16).map(" ".join)
odd_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=25)
any_text = st.one_of(text, text, text, odd_text)
SETTINGS = settings(max_examples=50, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def library_scores(predictions, references, use_stemmer, tokenizer=None):
    scorer = rouge_scorer.RougeScorer(TYPES, use_stemmer=use_stemmer, tokenizer=tokenizer)
    out = []
    for prediction, refs in zip(predictions, references, strict=True):
        if isinstance(refs, str):
            out.append(scorer.score(refs, prediction))
        else:
            out.append(scorer.score_multi(refs, prediction))
    return out


def assert_equal_to_library(result, expected):
    for rouge_type in TYPES:
        ours = result[rouge_type]
        for k, scores in enumerate(expected):
            assert ours.precision[k] == pytest.approx(scores[rouge_type].precision, abs=1e-12)
            assert ours.recall[k] == pytest.approx(scores[rouge_type].recall, abs=1e-12)
            assert ours.fmeasure[k] == pytest.approx(scores[rouge_type].fmeasure, abs=1e-12)
        mean_f = math.fsum(s[rouge_type].fmeasure for s in expected) / len(expected)
        assert ours.score == pytest.approx(mean_f, abs=1e-9)
        assert getattr(result, rouge_type) == pytest.approx(mean_f, abs=1e-9)


@pytest.mark.filterwarnings("ignore::harness.metrics.RougeTokenizationWarning")
@SETTINGS
@given(n=st.integers(1, 6), data=st.data(), use_stemmer=st.booleans(), multi=st.booleans())
def test_default_tokenizer_equals_rouge_score(n, data, use_stemmer, multi):
    predictions = data.draw(st.lists(any_text, min_size=n, max_size=n))
    reference = st.lists(any_text, min_size=1, max_size=3) if multi else any_text
    references = data.draw(st.lists(reference, min_size=n, max_size=n))
    result = rouge(predictions, references, use_stemmer=use_stemmer)
    assert_equal_to_library(result, library_scores(predictions, references, use_stemmer))


@SETTINGS
@given(n=st.integers(1, 6), data=st.data(), use_stemmer=st.booleans())
def test_unicode_tokenizer_equals_rouge_score_with_that_tokenizer(n, data, use_stemmer):
    predictions = data.draw(st.lists(any_text, min_size=n, max_size=n))
    references = data.draw(st.lists(any_text, min_size=n, max_size=n))
    result = rouge(predictions, references, use_stemmer=use_stemmer, tokenizer="unicode")
    expected = library_scores(predictions, references, use_stemmer,
                              tokenizer=UnicodeTokenizer(use_stemmer))
    assert_equal_to_library(result, expected)
    assert "|tok:unicode|" in result.signature


@SETTINGS
@given(value=st.text(st.characters(max_codepoint=127, exclude_categories=("Cs",)), max_size=60),
       use_stemmer=st.booleans())
def test_unicode_tokenizer_matches_the_default_on_ascii(value, use_stemmer):
    default = tokenizers.DefaultTokenizer(use_stemmer).tokenize(value)
    assert UnicodeTokenizer(use_stemmer).tokenize(value) == default


def test_unicode_tokenizer_keeps_scripts_and_splits_cjk():
    tokenizer = UnicodeTokenizer()
    assert tokenizer.tokenize("你好，世界") == ["你", "好", "世", "界"]
    assert tokenizer.tokenize("Привет, Мир!") == ["привет", "мир"]
    assert tokenizer.tokenize("مرحبا بالعالم") == ["مرحبا", "بالعالم"]
    assert tokenizer.tokenize("नमस्ते दुनिया") == ["नमस्ते", "दुनिया"]  # vowel signs stay in words
    assert tokenizer.tokenize("ＡＢＣ１２３ test") == ["abc123", "test"]  # NFKC full-width
    assert tokenizer.tokenize("GPU上で動く") == ["gpu", "上", "で", "動", "く"]
    assert tokenizer.tokenize("café_au-lait") == ["café", "au", "lait"]
    assert UnicodeTokenizer(use_stemmer=True).tokenize("Running models") == ["run", "model"]


def test_non_latin_text_warns_with_the_example_index_and_unicode_fixes_it():
    predictions = ["the cat sat", "你好世界", "Привет мир", "!!!", ""]
    references = ["the cat sat", "你好世界", "Привет", "...", "x"]
    with pytest.warns(RougeTokenizationWarning) as caught:
        result = rouge(predictions, references)
    warning = caught[0].message
    assert warning.predictions == [1, 2] and warning.references == [1, 2]
    assert "predictions at index 1, 2" in str(warning)
    assert "tokenizer='unicode'" in str(warning)
    assert result["rouge1"].fmeasure[1:3] == [0.0, 0.0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fixed = rouge(predictions, references, tokenizer="unicode")
    assert fixed["rouge1"].fmeasure[1] == 1.0
    assert fixed["rouge1"].fmeasure[2] == pytest.approx(2 * 0.5 * 1 / 1.5)
    assert fixed.emptied_predictions == [] and result.emptied_predictions == [1, 2]


def test_parallel_path_is_identical_to_serial(monkeypatch):
    import harness.metrics.rouge_metric as rouge_module

    calls = []
    real = rouge_module._score_parallel

    def spy(*args):
        calls.append(args[-1])
        return real(*args)

    monkeypatch.setattr(rouge_module, "_score_parallel", spy)
    words = [*WORDS, "Привет", "summary"]
    predictions = [" ".join(words[(i * 7 + k) % len(words)] for k in range(5 + i % 9))
                   for i in range(240)]
    references = [" ".join(words[(i * 3 + k) % len(words)] for k in range(4 + i % 7))
                  for i in range(240)]
    with pytest.warns(RougeTokenizationWarning):
        serial = rouge(predictions, references, workers=1)
    with pytest.warns(RougeTokenizationWarning):
        parallel = rouge(predictions, references, workers=2, parallel_threshold=10)
    assert calls == [2]  # the second call ran in two worker processes, the first did not
    for rouge_type in TYPES:
        assert parallel[rouge_type] == serial[rouge_type]
    assert parallel.emptied_predictions == serial.emptied_predictions
    assert parallel.emptied_references == serial.emptied_references
    assert parallel.signature == serial.signature


class _WhitespaceTokenizer(tokenizers.Tokenizer):
    def tokenize(self, text):
        return text.split()


def test_custom_tokenizer_is_used_and_named_in_the_signature():
    result = rouge(["A b c"], ["a b C"], tokenizer=_WhitespaceTokenizer())
    assert result.rouge1 == pytest.approx(1 / 3)
    assert "tok:custom(_WhitespaceTokenizer)" in result.signature
    pickle.dumps(UnicodeTokenizer(True))  # picklable, so it can run in worker processes


def test_signature_and_selected_types():
    result = rouge(["the cat"], ["the cat"], rouge_types=["rougeL"], use_stemmer=False)
    assert result["rougeL"].signature.startswith("rouge:L|stem:no|tok:default|nrefs:1|rouge_score:")
    assert result.signature.startswith("rouge:L|")
    stemmed = rouge(["the cat"], [["the cat", "a cat"]])
    assert stemmed.signature.startswith("rouge:1+2+L+Lsum|stem:yes|tok:default|nrefs:2|")
    assert "|nltk:" in stemmed.signature
    with pytest.raises(KeyError, match="rouge1"):
        result["rouge1"]
    assert result.as_dict() == {"rougeL": 1.0}


def test_bad_input_names_the_problem():
    with pytest.raises(ValueError, match="1 predictions vs 2 references"):
        rouge(["a"], ["a", "b"])
    with pytest.raises(ValueError, match="no examples"):
        rouge([], [])
    with pytest.raises(ValueError, match="unknown ROUGE type 'rougeX'"):
        rouge(["a"], ["a"], rouge_types=["rougeX"])
    with pytest.raises(ValueError, match="unknown ROUGE tokenizer 'spaces'"):
        rouge(["a"], ["a"], tokenizer="spaces")
    with pytest.raises(ValueError, match="tokenizer must be"):
        rouge(["a"], ["a"], tokenizer=str.split)
    with pytest.raises(ValueError, match=r"predictions\[0\] must be a string"):
        rouge([1], ["a"])

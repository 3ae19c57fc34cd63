"""Scoring predictions into EvalResult fields: references' numbers, Unicode safety, no network."""

from __future__ import annotations

import socket
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.runner.scoring import score_classification, score_generation

words = st.sampled_from(["the", "lamp", "is", "green", "costs", "35", "dollars", "a", "red", "chair", "."])
sentences = st.lists(words, min_size=0, max_size=8).map(" ".join)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(sentences, sentences), min_size=1, max_size=6))
def test_generation_scores_equal_the_reference_libraries(pairs):
    import sacrebleu
    from rouge_score import rouge_scorer

    predictions = [p for p, _ in pairs]
    references = [r for _, r in pairs]
    metrics, per_example, signatures, _ = score_generation(predictions, references)
    assert metrics["bleu"] == pytest.approx(sacrebleu.corpus_bleu(predictions, [references]).score, abs=1e-9)
    scorer = rouge_scorer.RougeScorer(["rouge1", "rougeL"], use_stemmer=True)
    expected = [scorer.score(r, p) for p, r in pairs]
    assert per_example["rougeL"] == pytest.approx([100 * e["rougeL"].fmeasure for e in expected], abs=1e-9)
    assert metrics["rouge1"] == pytest.approx(100 * sum(e["rouge1"].fmeasure for e in expected) / len(pairs),
                                              abs=1e-9)
    assert per_example["exact_match"] == [float(p.strip() == r.strip()) for p, r in pairs]
    assert _fields(signatures["bleu"])["tok"] == "13a"  # sacrebleu's default tokenizer unless asked


def _fields(signature: str) -> dict[str, str]:
    return dict(part.split(":", 1) for part in signature.split("|"))


@pytest.mark.parametrize("tokenize", ["13a", "char", "intl"])
def test_bleu_signature_carries_sacrebleu_own_settings(tokenize):
    import sacrebleu

    predictions, references = ["the lamp is green", "a red chair"], ["the lamp is red", "a red chair"]
    theirs = sacrebleu.metrics.BLEU(tokenize=tokenize)
    score = theirs.corpus_score(predictions, [references])
    metrics, _, signatures, _ = score_generation(predictions, references, ["bleu"], {"bleu_tokenize": tokenize})
    assert metrics["bleu"] == pytest.approx(score.score, abs=1e-9)
    ours, expected = _fields(signatures["bleu"]), _fields(str(theirs.get_signature()))
    assert ours["tok"] == tokenize == expected["tok"]
    assert ours["sacrebleu"] == expected["version"] == sacrebleu.__version__
    for key in ("nrefs", "case", "eff", "smooth"):
        assert ours[key] == expected[key], key


def test_non_latin_rouge_warns_by_default_and_scores_with_the_unicode_tokenizer():
    predictions, references = ["Привет, мир, как дела"], ["Привет мир как дела"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        default, _, default_sigs, _ = score_generation(predictions, references, ["rougeL"])
    assert default["rougeL"] == 0.0
    assert any("token" in str(w.message).lower() for w in caught)
    unicode_metrics, _, unicode_sigs, details = score_generation(predictions, references, ["rougeL"],
                                                                 {"rouge_tokenizer": "unicode"})
    assert unicode_metrics["rougeL"] == pytest.approx(100.0)
    assert unicode_sigs["rougeL"] != default_sigs["rougeL"]  # a baseline under the other tokenizer is not comparable
    assert details["metric_options"] == {"rouge_tokenizer": "unicode"}


def test_scoring_needs_no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access during scoring")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    metrics, *_ = score_generation(["the lamp is green"], ["the lamp is red"])
    assert metrics["rougeL"] > 0
    metrics, *_ = score_classification(["Positive."], ["positive"], ["positive", "negative"])
    assert metrics["accuracy"] == 1.0


def test_unknown_metric_option_is_a_spec_error(tmp_path):
    from harness.errors import SpecError
    from harness.spec import load_spec

    spec = tmp_path / "spec.toml"
    spec.write_text('[suites.g]\ntask = "generation"\neval = "e.jsonl"\nmetric_options = { rouge_tokenizer = "icu" }\n',
                    encoding="utf-8")
    with pytest.raises(SpecError, match=r"metric_options.rouge_tokenizer: 'icu'"):
        load_spec(spec)

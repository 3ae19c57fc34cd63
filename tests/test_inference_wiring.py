"""Inference settings from the spec reach the model, and latency is labelled as what it is.

``likelihood_normalize`` (suite key, checked at load) reaches label scoring and the outputs cache
key / signature only when set; ``harness.torch_threads`` reaches ``load_model``; batched local
outputs carry their batch's wall time and size, endpoints' latency is per request.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import SpecError
from harness.protocol import Candidate, Generation
from harness.spec import load_spec

SPEC = """
[harness]
corpus = "corpus.txt"
{harness}
[suites.s]
task = "{task}"
{labels}
eval = "eval.jsonl"
{extra}
[suites.s.candidates.base]
kind = "base"
"""


def spec(tmp_path: Path, *, task: str = "classification", extra: str = "", harness: str = ""):
    labels = 'labels = ["good", "bad"]' if task == "classification" else ""
    path = tmp_path / "spec.toml"
    path.write_text(SPEC.format(task=task, labels=labels, extra=extra, harness=harness), encoding="utf-8")
    return load_spec(path)


def test_likelihood_normalize_loads_and_defaults_to_none(tmp_path):
    assert spec(tmp_path).suite("s").likelihood_normalize == "none"
    for value in ("none", "chars", "bytes"):
        assert spec(tmp_path, extra=f'likelihood_normalize = "{value}"').suite("s").likelihood_normalize == value


@pytest.mark.parametrize(("task", "extra", "message"), [
    ("classification", 'likelihood_normalize = "tokens"',
     r"spec.toml: suites.s.likelihood_normalize: 'tokens' is not one of none, chars, bytes"),
    ("classification", "likelihood_normalize = 1", r"suites.s.likelihood_normalize: expected a string"),
    ("generation", 'likelihood_normalize = "chars"',
     r"suites.s.likelihood_normalize: label likelihoods are normalised only in a classification suite"),
])
def test_bad_likelihood_normalize_is_refused_by_key_path(tmp_path, task, extra, message):
    with pytest.raises(SpecError, match=message):
        spec(tmp_path, task=task, extra=extra)


class _Candidate:
    fingerprint = "f" * 16


def test_the_outputs_key_changes_only_when_scores_are_normalised(tmp_path):
    from harness.cache import cache_key
    from harness.runner.evaluate import _outputs_key

    plain = spec(tmp_path).suite("s")
    chars = spec(tmp_path, extra='likelihood_normalize = "chars"').suite("s")
    by_bytes = spec(tmp_path, extra='likelihood_normalize = "bytes"').suite("s")
    # the key every existing cache entry was written under
    before = cache_key("outputs", {"model": "f" * 16, "decode": plain.decode.as_dict(), "method": "likelihood",
                                   "labels": ["good", "bad"]})
    assert _outputs_key(_Candidate(), plain, "likelihood") == before
    keys = {_outputs_key(_Candidate(), s, "likelihood") for s in (plain, chars, by_bytes)}
    assert len(keys) == 3
    # generation and classifier heads do not score label likelihoods: their keys do not move
    for method in ("generate", "classifier"):
        assert _outputs_key(_Candidate(), chars, method) == _outputs_key(_Candidate(), plain, method)


@pytest.fixture(scope="module")
def chatml():
    from harness.backends.hf.templates import build_format_model, train_format_tokenizer

    tokenizer = train_format_tokenizer("chatml")
    return build_format_model(tokenizer, "chatml", seed=3), tokenizer


def test_a_local_candidate_scores_labels_with_the_suites_normalisation(chatml):
    from harness.backends.hf.candidates import LocalCausalLM
    from harness.backends.hf.likelihood import label_log_likelihoods

    model, tokenizer = chatml
    prompts = [[{"role": "user", "content": line}] for line in ("the soup was tasty", "the film was dull",
                                                                "one two three", "a lovely quiet room")]
    labels = ["positive", "one two three four five six"]  # 8 vs 27 characters
    scores = label_log_likelihoods(model, tokenizer, prompts, labels)
    for normalize, lengths in (("none", (1, 1)), ("chars", (8, 27)), ("bytes", (8, 27))):
        candidate = LocalCausalLM("c", "base", Path("."), None, "fp", normalize=normalize)
        candidate._loaded = (model, tokenizer)
        expected = [labels[0] if a / lengths[0] >= b / lengths[1] else labels[1] for a, b in scores]
        assert candidate.predict_labels(prompts, labels) == expected


def test_torch_threads_reach_load_model(monkeypatch):
    from harness.backends.hf import inference
    from harness.backends.hf.candidates import LocalCausalLM

    seen = {}
    monkeypatch.setattr(inference, "load_model", lambda *a, **kw: seen.update(kw) or ("model", "tokenizer"))
    candidate = LocalCausalLM("c", "base", Path("m"), None, "fp", torch_threads=3)
    assert candidate._model() == ("model", "tokenizer")
    assert seen["torch_threads"] == 3


def test_inference_settings_come_from_the_spec(tmp_path):
    from harness.backends.hf.candidates import inference_settings

    loaded = spec(tmp_path, harness="torch_threads = 2", extra='likelihood_normalize = "bytes"')

    class Ctx:
        spec = loaded

    assert inference_settings(Ctx(), loaded.suite("s")) == {"torch_threads": 2, "normalize": "bytes"}


def test_batched_usage_reports_batches_and_per_example_shares():
    from harness.runner.evaluate import _usage

    # a batch of 2 taking 1.0 s and a batch of 3 taking 3.0 s
    outputs = [Generation("a", latency_s=0.5, batch_latency_s=1.0, batch_size=2)] * 2 + \
              [Generation("b", latency_s=1.0, batch_latency_s=3.0, batch_size=3)] * 3
    usage = _usage(outputs)
    assert usage["latency_p50_s"] == 1.0 and usage["latency_mean_s"] == pytest.approx(0.8)
    assert usage["batch_latency_mean_s"] == pytest.approx(2.0)
    assert usage["batch_latency_max_s"] == 3.0
    assert usage["batch_size_mean"] == pytest.approx(2.5)
    per_request = _usage([Generation("a", latency_s=0.2), Generation("b", latency_s=0.4)])
    assert not any(key.startswith("batch") for key in per_request)


def test_latency_is_labelled_as_what_it_is():
    from harness.report.latency import latency_text

    local = {"requests": 5.0, "latency_mean_s": 0.8, "latency_p50_s": 1.0, "latency_p95_s": 1.0,
             "batch_latency_mean_s": 2.0, "batch_latency_max_s": 3.0, "batch_size_mean": 2.5}
    assert latency_text(local) == ("latency per-example share of batch time p50 1s, p95 1s; "
                                   "batch time mean 2s, max 3s, batch size mean 2.5")
    endpoint = {"requests": 2.0, "latency_mean_s": 0.3, "latency_p50_s": 0.4, "latency_p95_s": 0.4}
    assert latency_text(endpoint) == "latency per request p50 0.4s, p95 0.4s"
    assert latency_text({"requests": 2.0, "latency_mean_s": 0.0}) == ""  # nothing measured (e.g. rescored)


class _Scorer(Candidate):
    """A label-scoring candidate that takes a known time per call."""

    name, kind, fingerprint, training = "scorer", "base", "e" * 16, None

    def generate(self, prompts, params):
        raise AssertionError("a likelihood suite must not generate")

    def predict_labels(self, prompts, labels):
        import time

        time.sleep(0.05)
        return [labels[0]] * len(prompts)


def test_label_scored_outputs_carry_their_batch(tmp_path):
    from harness.cache import CacheStore
    from harness.context import BuildContext
    from harness.data.records import Example, Split
    from harness.runner.evaluate import PROGRESS_CHUNK, run_candidate

    loaded = spec(tmp_path, extra='scoring = "likelihood"')
    ctx = BuildContext(spec=loaded, cache=CacheStore(tmp_path / "cache"), log=lambda _m: None)
    n = PROGRESS_CHUNK + 4  # two calls: a full chunk and 4 left over
    examples = [Example(id=str(i), messages=[{"role": "user", "content": f"review {i}"},
                                              {"role": "assistant", "content": "good"}]) for i in range(n)]
    outputs, method, status = run_candidate(ctx, _Scorer(), loaded.suite("s"), Split("eval", "eval.jsonl", examples, "x"))
    assert (method, status) == ("likelihood", "miss")
    assert [g.batch_size for g in outputs] == [PROGRESS_CHUNK] * PROGRESS_CHUNK + [4] * 4
    for g in outputs:
        assert g.batch_latency_s >= 0.05 and g.latency_s == pytest.approx(g.batch_latency_s / g.batch_size)

"""Label scoring in one forward pass (custom 4D mask) and in two (cache repeated per label): both
equal a full forward over each conversation, on ChatML / Llama-3 / Gemma tiny models, with sdpa and
eager attention, with and without the shared prefix; which models may take the one pass; the
prefix cache is expanded without copying; shared-head tokenization equals whole encoding."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.backends.hf.templates import DEFAULT_LINES, FORMATS
from tests.test_inference_likelihood import direct_score

LABELS = ["positive", "negative", "neutral", "one two three"]  # one label of several tokens
SYSTEM = {"role": "system", "content": "classify the sentiment of the review. " * 4}


def conversations():
    shots = [SYSTEM]
    for line, label in zip(DEFAULT_LINES[:3], LABELS, strict=False):
        shots += [{"role": "user", "content": line}, {"role": "assistant", "content": label}]
    return [[*shots, {"role": "user", "content": line}] for line in DEFAULT_LINES]


@pytest.fixture(scope="module", params=sorted(FORMATS))
def format_models(request):
    from harness.backends.hf.templates import build_format_model, train_format_tokenizer

    tokenizer = train_format_tokenizer(request.param)
    sdpa = build_format_model(tokenizer, request.param, seed=2)
    eager = build_format_model(tokenizer, request.param, seed=2)
    eager.config._attn_implementation = "eager"
    return request.param, tokenizer, {"sdpa": sdpa, "eager": eager}


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
@pytest.mark.parametrize("path", ["one pass", "two passes"])
@pytest.mark.parametrize("share_prefix", [True, False])
def test_every_path_equals_a_plain_forward(format_models, monkeypatch, attention, path, share_prefix):
    from harness.backends.hf import likelihood

    name, tokenizer, models = format_models
    model = models[attention]
    assert likelihood.one_pass_supported(model, 10_000)
    if path == "two passes":
        monkeypatch.setattr(likelihood, "one_pass_supported", lambda *_: False)
    prompts = conversations()
    scores = likelihood.label_log_likelihoods(model, tokenizer, prompts, LABELS, batch_size=3,
                                              share_prefix=share_prefix)
    for prompt, row in zip(prompts, scores, strict=True):
        for label, score in zip(LABELS, row, strict=True):
            expected = direct_score(model, tokenizer, prompt, label, FORMATS[name].end_of_turn)
            assert score == pytest.approx(expected, abs=1e-4)


def _model(**config):
    return SimpleNamespace(config=SimpleNamespace(**{"_attn_implementation": "sdpa", **config}))


@pytest.mark.parametrize(("config", "longest", "expected"), [
    ({}, 4096, True),
    ({"_attn_implementation": "eager"}, 10, True),
    ({"_attn_implementation": "flash_attention_2"}, 10, False),  # takes no 4D mask
    ({"_attn_implementation": "flex_attention"}, 10, False),
    ({"sliding_window": 4096}, 4096, True),  # the window covers every token
    ({"sliding_window": 4096}, 4097, False),  # a custom mask would attend past the window
    ({"sliding_window": 8, "use_sliding_window": False}, 100, True),  # Qwen2: window configured, off
    ({"layer_types": ["full_attention", "sliding_attention"], "sliding_window": 512}, 100, True),
    ({"layer_types": ["full_attention", "linear_attention"]}, 100, False),  # hybrid recurrent layers
    ({"is_encoder_decoder": True}, 10, False),
])
def test_which_models_take_the_one_pass(config, longest, expected):
    from harness.backends.hf.likelihood import one_pass_supported

    assert one_pass_supported(_model(**config), longest) is expected


def test_the_prefix_cache_is_expanded_without_copying_and_stays_intact():
    import torch
    from transformers.cache_utils import DynamicCache

    from harness.backends.hf.prefix import expanded_cache

    prefix = DynamicCache()
    for layer in range(2):
        prefix.update(torch.randn(1, 2, 5, 4), torch.randn(1, 2, 5, 4), layer)
    before = [(layer.keys.clone(), layer.values.clone()) for layer in prefix.layers]
    cache = expanded_cache(prefix, 3)
    for view, layer in zip(cache.layers, prefix.layers, strict=True):
        assert view.keys.shape == (3, 2, 5, 4) and view.keys.data_ptr() == layer.keys.data_ptr()
        assert torch.equal(view.values[2], layer.values[0])
    cache.update(torch.randn(3, 2, 1, 4), torch.randn(3, 2, 1, 4), 0)  # what a forward does
    assert cache.get_seq_length() == 6 and prefix.get_seq_length() == 5
    for (keys, values), layer in zip(before, prefix.layers, strict=True):
        assert torch.equal(keys, layer.keys) and torch.equal(values, layer.values)


_TOKENIZERS: dict = {}


def _tokenizer(name: str):
    from harness.backends.hf.templates import train_format_tokenizer

    if name not in _TOKENIZERS:
        _TOKENIZERS[name] = train_format_tokenizer(name)
    return _TOKENIZERS[name]


_TEXT = st.text(alphabet="abc dé\n<|>_", min_size=0, max_size=12)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sorted(FORMATS)), st.lists(_TEXT, min_size=0, max_size=4),
       st.lists(_TEXT, min_size=3, max_size=6))
def test_shared_head_tokenization_equals_whole_encoding(name, head, tails):
    from harness.backends.hf.inference import render_prompts

    tokenizer = _tokenizer(name)
    shots = [{"role": "user" if i % 2 == 0 else "assistant", "content": c} for i, c in enumerate(head)]
    last = "assistant" if len(head) % 2 else "user"
    prompts = [[*shots, {"role": last, "content": tail}] for tail in tails]
    one_by_one = [list(tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=True,
                                                     return_dict=True)["input_ids"]) for p in prompts]
    assert render_prompts(tokenizer, prompts) == one_by_one
    assert render_prompts(tokenizer, prompts, share_prefix=False) == one_by_one

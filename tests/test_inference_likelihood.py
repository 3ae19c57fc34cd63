"""Label likelihood on real tiny models: the template's end-of-turn, the joint-tokenization check,
shared-prefix caching, batched rendering, length normalisation and no deprecated calls."""

from __future__ import annotations

import logging
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.backends.hf.templates import DEFAULT_LINES, FORMATS
from harness.protocol import DecodeParams

LABELS = ["positive", "negative", "neutral"]


def conversations():
    return [[{"role": "system", "content": "classify the sentiment of the review"},
             {"role": "user", "content": line}] for line in DEFAULT_LINES]


@pytest.fixture(scope="module", params=sorted(FORMATS))
def format_model(request):
    from harness.backends.hf.templates import build_format_model, train_format_tokenizer

    tokenizer = train_format_tokenizer(request.param)
    return request.param, build_format_model(tokenizer, request.param, seed=1), tokenizer


def direct_score(model, tokenizer, prompt, label, end_of_turn: str) -> float:
    """Log-probability of the label and the format's end-of-turn token from one full forward pass
    over the conversation as the template writes it (transformers alone)."""
    import torch

    ids = lambda conv, gen: list(tokenizer.apply_chat_template(conv, add_generation_prompt=gen, tokenize=True,  # noqa: E731
                                                               return_dict=True)["input_ids"])
    prompt_ids = ids(prompt, True)
    full = ids([*prompt, {"role": "assistant", "content": label}], False)
    end = full.index(tokenizer.convert_tokens_to_ids(end_of_turn), len(prompt_ids)) + 1
    with torch.inference_mode():
        logp = torch.log_softmax(model(input_ids=torch.tensor([full[:end]])).logits.float(), dim=-1)[0]
    return sum(float(logp[k - 1, full[k]]) for k in range(len(prompt_ids), end))


def test_labels_are_scored_with_the_templates_end_of_turn(format_model):
    from harness.backends.hf.likelihood import label_log_likelihoods, label_targets

    name, model, tokenizer = format_model
    fmt = FORMATS[name]
    targets = label_targets(tokenizer, conversations()[0], LABELS)
    eot = tokenizer.convert_tokens_to_ids(fmt.end_of_turn)
    assert all(t[-1] == eot != tokenizer.eos_token_id for t in targets)
    scores = label_log_likelihoods(model, tokenizer, conversations(), LABELS, batch_size=3)
    for prompt, row in zip(conversations(), scores, strict=True):
        for label, score in zip(LABELS, row, strict=True):
            assert score == pytest.approx(direct_score(model, tokenizer, prompt, label, fmt.end_of_turn), abs=1e-4)


def test_a_label_that_merges_with_the_prompt_is_refused(format_model):
    from harness.backends.hf.likelihood import LabelTokenizationError, label_log_likelihoods

    _, model, tokenizer = format_model
    original = tokenizer.chat_template
    tokenizer.chat_template = ("{% for m in messages %}{{ m['role'] + ': ' + m['content'] + '\n' }}{% endfor %}"
                               "{% if add_generation_prompt %}{{ 'assistant: ' }}{% endif %}")
    try:
        prompt = [{"role": "user", "content": "the soup was tasty"}]
        text = tokenizer.apply_chat_template([prompt[0], {"role": "assistant", "content": "negative"}], tokenize=False)
        alone = tokenizer(tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False))["input_ids"]
        assert tokenizer(text)["input_ids"][:len(alone)] != alone  # the trailing space merges into the label
        with pytest.raises(LabelTokenizationError, match="label 'negative'"):
            label_log_likelihoods(model, tokenizer, [prompt], ["negative", "positive"])
    finally:
        tokenizer.chat_template = original


def few_shot(split, train, shots: int = 5):
    """5-shot prompts: the same system prompt and examples, then each eval review."""
    head = [train.examples[0].prompt[0]]
    for ex in train.examples[:shots]:
        head += [ex.prompt[-1], {"role": "assistant", "content": ex.reference}]
    return [[*head, ex.prompt[-1]] for ex in split.examples]


@pytest.mark.slow
def test_shared_prefix_cache_gives_the_same_scores(tiny_base, sentiment_eval, sentiment_train):
    from harness.backends.hf.inference import load_model, render_prompts
    from harness.backends.hf.likelihood import label_log_likelihoods, pick_labels
    from harness.backends.hf.prefix import MIN_SHARED_PREFIX, shared_prefix_length

    model, tokenizer = load_model(tiny_base, device="cpu")
    prompts = few_shot(sentiment_eval, sentiment_train)[:40]
    assert shared_prefix_length(render_prompts(tokenizer, prompts)) > 5 * MIN_SHARED_PREFIX
    labels = ["positive", "negative"]
    shared = label_log_likelihoods(model, tokenizer, prompts, labels, batch_size=16, share_prefix=True)
    whole = label_log_likelihoods(model, tokenizer, prompts, labels, batch_size=16, share_prefix=False)
    assert pick_labels(shared, labels) == pick_labels(whole, labels)
    for a, b in zip(shared, whole, strict=True):
        assert a == pytest.approx(b, abs=1e-4)


@pytest.mark.parametrize("rows", [[[1, 2, 3, 4], [1, 2, 3, 5]], [[1, 2], [1, 2]], [[7], [7, 8]], [[1, 2], [3]]])
def test_shared_prefix_leaves_every_prompt_a_token(rows):
    from harness.backends.hf.prefix import shared_prefix_length

    n = shared_prefix_length(rows)
    assert all(len(r) > n for r in rows)
    assert all(r[:n] == rows[0][:n] for r in rows)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(st.text(alphabet="abc dé\n", min_size=0, max_size=12), min_size=1, max_size=3),
                min_size=1, max_size=5))
def test_batched_rendering_equals_per_prompt_ids(contents):
    from harness.backends.hf.inference import render_prompts

    tokenizer = _chatml()
    prompts = [[{"role": "user" if i % 2 == 0 else "assistant", "content": c} for i, c in enumerate(conv)]
               for conv in contents]
    one_by_one = [list(tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=True,
                                                     return_dict=True)["input_ids"]) for p in prompts]
    assert render_prompts(tokenizer, prompts) == one_by_one


_TOKENIZERS: dict = {}


def _chatml():
    from harness.backends.hf.templates import train_format_tokenizer

    if "chatml" not in _TOKENIZERS:
        _TOKENIZERS["chatml"] = train_format_tokenizer("chatml")
    return _TOKENIZERS["chatml"]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=6), min_size=1, max_size=4, unique=True), st.data())
def test_length_normalisation_is_lm_evals_definition(choices, data):
    import numpy as np

    from harness.backends.hf.likelihood import pick_labels

    lls = data.draw(st.lists(st.floats(-50, 0, allow_nan=False), min_size=len(choices), max_size=len(choices)))
    # lm-evaluation-harness 0.4.13, api/task.py (multiple_choice): acc_norm and acc_bytes
    completion_len = np.array([float(len(i)) for i in choices])
    byte_length = np.array([float(len(i.encode("utf-8"))) for i in choices])
    assert pick_labels([lls], choices, "chars") == [choices[int(np.argmax(np.array(lls) / completion_len))]]
    assert pick_labels([lls], choices, "bytes") == [choices[int(np.argmax(np.array(lls) / byte_length))]]
    assert pick_labels([lls], choices) == [choices[int(np.argmax(lls))]]


def test_unknown_normalisation_is_refused():
    from harness.backends.hf.likelihood import pick_labels

    with pytest.raises(ValueError, match="normalize must be one of none, chars, bytes"):
        pick_labels([[0.0]], ["a"], "tokens")


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_no_deprecation_warnings_from_the_harness_calls(format_model):
    """Generation and label scoring under warnings-as-errors, with transformers' own warnings seen."""
    from transformers.utils import logging as hf_logging

    from harness.backends.hf.inference import generate_batch
    from harness.backends.hf.likelihood import label_log_likelihoods

    _, model, tokenizer = format_model
    hf_logging.warning_once.cache_clear()  # a once-only warning already given must show again
    records = _Records()
    logger = logging.getLogger("transformers")
    logger.addHandler(records)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            generate_batch(model, tokenizer, conversations()[:4], DecodeParams(max_new_tokens=4), batch_size=2)
            label_log_likelihoods(model, tokenizer, conversations(), LABELS, batch_size=4)
            label_log_likelihoods(model, tokenizer, conversations(), LABELS, batch_size=4, share_prefix=False)
    finally:
        logger.removeHandler(records)
    assert not [m for m in records.messages if "deprecat" in m.lower()], records.messages

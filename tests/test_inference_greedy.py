"""Batched generation with a shared-prefix KV cache and finished rows leaving the batch.

Real tiny models with ChatML, Llama-3 and Gemma templates and multi-id stop configs, steered so
replies stop at different lengths. Expected replies come from plain ``model.generate`` on one
unpadded whole prompt at a time; the harness must give exactly those, with and without the
prefix cache and on its ``model.generate`` path.
"""

from __future__ import annotations

import functools

import pytest

from harness.backends.hf.templates import DEFAULT_LINES, FORMATS
from harness.protocol import DecodeParams
from tests.test_inference_stops import MAX_NEW, build_steered, plain_generate

pytestmark = pytest.mark.slow
SYSTEM = "answer the question in one short line"


def prompts() -> list[list[dict[str, str]]]:
    """16 questions after one system prompt (the shared prefix)."""
    users = [*DEFAULT_LINES, *(" ".join(line.split()[::-1][:4]) for line in DEFAULT_LINES)]
    return [[{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}] for user in users]


@pytest.fixture(scope="module", params=sorted(FORMATS))
def steered(request, tmp_path_factory):
    from harness.backends.hf.inference import load_model

    path = build_steered(request.param, tmp_path_factory.mktemp(request.param), on=prompts,
                         initializer_range=0.3)  # replies that differ from prompt to prompt
    model, tokenizer = load_model(path, device="cpu")
    return model, tokenizer


def expected(model, tokenizer, **kwargs) -> list[tuple[str, int]]:
    rows = [plain_generate(model, tokenizer, p, **kwargs) for p in prompts()]
    return [(tokenizer.decode(r, skip_special_tokens=True).strip(), len(r)) for r in rows]


def replies(outputs) -> list[tuple[str, int]]:
    return [(g.text, g.completion_tokens) for g in outputs]


def record_rows(monkeypatch, model) -> list[tuple[int, int]]:
    """Record ``(rows, tokens)`` of every forward ``model`` runs."""
    original = model.forward
    seen: list[tuple[int, int]] = []

    @functools.wraps(original)  # keeps the signature the harness inspects
    def wrapped(*args, **kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        seen.append((int(ids.shape[0]), int(ids.shape[1])))
        return original(*args, **kwargs)

    monkeypatch.setattr(model, "forward", wrapped)
    return seen


def test_the_prompts_share_a_long_prefix_and_replies_differ_in_length(steered):
    from harness.backends.hf.inference import render_prompts
    from harness.backends.hf.prefix import MIN_SHARED_PREFIX, worth_sharing

    model, tokenizer = steered
    assert worth_sharing(render_prompts(tokenizer, prompts())) >= 2 * MIN_SHARED_PREFIX
    lengths = [n for _, n in expected(model, tokenizer)]
    assert min(lengths) < MAX_NEW and len(set(lengths)) >= 3


@pytest.mark.parametrize("share_prefix", [True, False])
def test_greedy_replies_equal_generate_on_whole_prompts(steered, share_prefix):
    from harness.backends.hf.inference import generate_batch

    model, tokenizer = steered
    got = generate_batch(model, tokenizer, prompts(), DecodeParams(max_new_tokens=MAX_NEW), batch_size=5,
                         share_prefix=share_prefix)
    assert replies(got) == expected(model, tokenizer)


def test_the_generate_path_with_the_prefix_cache_gives_the_same_replies(steered, monkeypatch):
    from harness.backends.hf import inference

    model, tokenizer = steered
    monkeypatch.setattr(inference, "greedy_supported", lambda *_: False)
    seen = record_rows(monkeypatch, model)
    got = inference.generate_batch(model, tokenizer, prompts(), DecodeParams(max_new_tokens=MAX_NEW), batch_size=5)
    assert replies(got) == expected(model, tokenizer)
    assert seen[0][0] == 1  # the prefix ran once, on its own


def test_the_prefix_runs_once_and_batches_run_only_their_suffixes(steered, monkeypatch):
    from harness.backends.hf.inference import generate_batch, render_prompts
    from harness.backends.hf.prefix import worth_sharing

    model, tokenizer = steered
    encoded = render_prompts(tokenizer, prompts())
    shared = worth_sharing(encoded)
    seen = record_rows(monkeypatch, model)
    generate_batch(model, tokenizer, prompts(), DecodeParams(max_new_tokens=MAX_NEW), batch_size=len(encoded))
    assert seen[0] == (1, shared)
    prompt_forwards = prompt_runs(seen[1:], len(encoded))
    suffixes = sorted(len(e) - shared for e in encoded)
    # every row's suffix runs once, in forwards as wide as the longest suffix they hold, never
    # more tokens than one forward padded to the longest
    assert sum(r for r, _ in prompt_forwards) == len(encoded)
    assert {w for _, w in prompt_forwards} <= set(suffixes) and max(w for _, w in prompt_forwards) == suffixes[-1]
    assert sum(r * w for r, w in prompt_forwards) <= len(encoded) * suffixes[-1]
    assert all(tokens == 1 for _, tokens in seen[1 + len(prompt_forwards):])


def prompt_runs(seen: list[tuple[int, int]], rows: int) -> list[tuple[int, int]]:
    """The first forwards of ``seen`` that together run ``rows`` rows: the prompts' own."""
    runs, total = [], 0
    while total < rows:
        runs.append(seen[len(runs)])
        total += runs[-1][0]
    assert total == rows
    return runs


def test_prompts_of_different_lengths_run_in_buckets_with_the_same_replies(steered, monkeypatch):
    from harness.backends.hf import greedy
    from harness.backends.hf.inference import generate_batch, render_prompts

    model, tokenizer = steered
    want = expected(model, tokenizer)
    encoded = render_prompts(tokenizer, prompts())
    monkeypatch.setattr(greedy, "BUCKET_OVERHEAD_TOKENS", 0)  # a forward per prompt length
    seen = record_rows(monkeypatch, model)
    got = generate_batch(model, tokenizer, prompts(), DecodeParams(max_new_tokens=MAX_NEW), batch_size=len(want),
                         share_prefix=False)
    assert replies(got) == want
    runs = prompt_runs(seen, len(want))
    assert sorted(w for _, w in runs) == sorted({len(e) for e in encoded})  # one forward per distinct length
    assert sum(r * w for r, w in runs) == sum(map(len, encoded))  # no padding run at all


def test_finished_rows_leave_the_batch(steered, monkeypatch):
    from harness.backends.hf.inference import generate_batch

    model, tokenizer = steered
    want = expected(model, tokenizer)
    seen = record_rows(monkeypatch, model)
    got = generate_batch(model, tokenizer, prompts(), DecodeParams(max_new_tokens=MAX_NEW), batch_size=len(want),
                         share_prefix=False)
    assert replies(got) == want
    runs = prompt_runs(seen, len(want))  # the prompts (giving every reply's first token)
    rows = [len(want)] + [r for r, _ in seen[len(runs):]]
    assert rows == sorted(rows, reverse=True)
    # step k runs exactly the replies longer than k tokens: their token count is the whole work
    assert rows == [sum(n > k for _, n in want) for k in range(len(rows))]
    assert len(rows) == max(n for _, n in want)


def test_a_config_with_a_logits_processor_is_generated_by_generate(steered, monkeypatch):
    import copy

    from harness.backends.hf.greedy import greedy_supported
    from harness.backends.hf.inference import generate_batch

    model, tokenizer = steered
    plain = expected(model, tokenizer)
    config = copy.deepcopy(model.generation_config)
    config.repetition_penalty = 3.0
    monkeypatch.setattr(model, "generation_config", config)
    assert not greedy_supported(model, 64)
    penalised = expected(model, tokenizer)
    assert penalised != plain  # the penalty changes replies, so honouring it is visible
    # one prompt per batch: a repetition penalty also counts the padding of a padded batch
    got = generate_batch(model, tokenizer, prompts(), DecodeParams(max_new_tokens=MAX_NEW), batch_size=1)
    assert replies(got) == penalised


def test_sampling_with_the_prefix_cache_draws_the_same_replies(steered):
    from harness.backends.hf.inference import generate_batch

    model, tokenizer = steered
    params = DecodeParams(max_new_tokens=MAX_NEW, temperature=0.9, seed=7)
    shared = generate_batch(model, tokenizer, prompts(), params, batch_size=5)
    whole = generate_batch(model, tokenizer, prompts(), params, batch_size=5, share_prefix=False)
    assert replies(shared) == replies(whole)


def _config_model(**config):
    from transformers import LlamaConfig, LlamaForCausalLM

    base = {"vocab_size": 64, "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
            "num_attention_heads": 2, "num_key_value_heads": 2, "max_position_embeddings": 128}
    return LlamaForCausalLM(LlamaConfig(**{**base, **config}))


@pytest.mark.parametrize(("change", "supported"), [
    ({}, True),
    ({"attn_implementation": "eager"}, True),
    ({"attn_implementation": "flash_attention_2"}, False),  # masks the harness does not build
    ({"sliding_window": 16}, False),  # a window shorter than the prompt + reply
    ({"sliding_window": 4096}, True),
    ({"generation": {"no_repeat_ngram_size": 2}}, False),
    ({"generation": {"num_beams": 2}}, False),
    ({"generation": {"cache_implementation": "static"}}, False),
    ({"generation": {"do_sample": True, "temperature": 0.6, "top_p": 0.9}}, True),  # not used by greedy
    ({"generation": {"eos_token_id": [2, 3], "max_new_tokens": 40}}, True),
])
def test_which_models_take_the_greedy_path(change, supported):
    from harness.backends.hf.greedy import greedy_supported

    change = dict(change)
    generation = change.pop("generation", {})
    attn = change.pop("attn_implementation", "sdpa")
    model = _config_model(**change)
    model.config._attn_implementation = attn
    for key, value in generation.items():
        setattr(model.generation_config, key, value)
    assert greedy_supported(model, 40) is supported

"""Stop ids on real tiny models with ChatML, Llama-3 and Gemma templates and multi-id configs.

Each model is steered (output-head rows copied) so it emits its end-of-turn token and a second
stop id in the middle of replies. Expected replies come from plain ``model.generate`` on one
unpadded prompt with the model's own ``generation_config``; the harness's batched runner and
``ft-harness serve`` must stop exactly there.
"""

from __future__ import annotations

import collections
from pathlib import Path

import pytest

from harness.backends.hf.templates import DEFAULT_LINES, FORMATS
from harness.protocol import DecodeParams

pytestmark = pytest.mark.slow
MAX_NEW = 12


def conversations() -> list[list[dict[str, str]]]:
    with_system = [[{"role": "system", "content": "answer the question"}, {"role": "user", "content": line}]
                   for line in DEFAULT_LINES]
    plain = [[{"role": "user", "content": " ".join(line.split()[::-1][:4])}] for line in DEFAULT_LINES]
    return with_system + plain


def plain_generate(model, tokenizer, prompt, **kwargs) -> list[int]:
    """New tokens of ``model.generate`` on one unpadded prompt (transformers alone)."""
    import torch

    ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True,
                                        return_dict=True)["input_ids"]
    with torch.inference_mode():
        out = model.generate(torch.tensor([list(ids)]), max_new_tokens=MAX_NEW, do_sample=False, **kwargs)
    return out[0, len(ids):].tolist()


def build_steered(name: str, out_dir: Path, stop_tokens=None, on=conversations, **model_options) -> Path:
    """Save a tiny ``name``-format model that emits its end-of-turn and one more stop id mid-reply
    (to the prompts ``on()``)."""
    from harness.backends.hf.templates import (
        build_format_model,
        steer_token,
        train_format_tokenizer,
    )

    fmt = FORMATS[name]
    tokenizer = train_format_tokenizer(fmt)
    model = build_format_model(tokenizer, fmt, stop_tokens=stop_tokens, **model_options)
    special = set(tokenizer.all_special_ids)
    later = collections.Counter()
    for prompt in on():
        later.update(t for t in plain_generate(model, tokenizer, prompt)[1:] if t not in special)
    (a, _), (b, _) = later.most_common(2)
    other = next(t for t in fmt.stop_tokens if t != fmt.end_of_turn)
    steer_token(model, tokenizer.convert_tokens_to_ids(fmt.end_of_turn), a)
    steer_token(model, tokenizer.convert_tokens_to_ids(other), b)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


@pytest.fixture(scope="module", params=sorted(FORMATS))
def steered(request, tmp_path_factory):
    from harness.backends.hf.inference import load_model

    path = build_steered(request.param, tmp_path_factory.mktemp(request.param))
    model, tokenizer = load_model(path, device="cpu")
    return request.param, path, model, tokenizer


def expected(model, tokenizer, **kwargs) -> list[tuple[str, int]]:
    rows = [plain_generate(model, tokenizer, p, **kwargs) for p in conversations()]
    return [(tokenizer.decode(r, skip_special_tokens=True).strip(), len(r)) for r in rows]


def test_the_config_lists_several_stop_ids_and_they_are_hit(steered):
    _, _, model, tokenizer = steered
    config_ids = model.generation_config.eos_token_id
    assert isinstance(config_ids, list) and len(config_ids) >= 2
    assert tokenizer.eos_token_id in config_ids
    last = [plain_generate(model, tokenizer, p)[-1] for p in conversations()]
    non_eos = [t for t in last if t in config_ids and t != tokenizer.eos_token_id]
    assert len(non_eos) >= 3  # replies really end on a stop id that is not the tokenizer's eos
    # the defect: overriding the config with the tokenizer's eos runs past those stops
    old = [plain_generate(model, tokenizer, p, eos_token_id=tokenizer.eos_token_id) for p in conversations()]
    new = [plain_generate(model, tokenizer, p) for p in conversations()]
    assert sum(len(o) > len(n) for o, n in zip(old, new, strict=True)) >= 3


def test_runner_stops_where_generate_stops(steered):
    from harness.backends.hf.inference import generate_batch

    _, _, model, tokenizer = steered
    outputs = generate_batch(model, tokenizer, conversations(), DecodeParams(max_new_tokens=MAX_NEW), batch_size=5)
    assert [(g.text, g.completion_tokens) for g in outputs] == expected(model, tokenizer)
    assert any(g.completion_tokens < MAX_NEW for g in outputs)


def test_runner_also_stops_on_the_templates_end_of_turn(tmp_path):
    """A config that lists only eos: the template's end-of-turn token still ends the reply."""
    from harness.backends.hf.inference import end_of_turn_id, generate_batch, load_model

    fmt = FORMATS["chatml"]
    path = build_steered("chatml", tmp_path / "m", stop_tokens=(fmt.eos_token,))
    model, tokenizer = load_model(path, device="cpu")
    eot = tokenizer.convert_tokens_to_ids(fmt.end_of_turn)
    assert end_of_turn_id(tokenizer) == eot
    assert model.generation_config.eos_token_id == [tokenizer.eos_token_id]
    outputs = generate_batch(model, tokenizer, conversations(), DecodeParams(max_new_tokens=MAX_NEW), batch_size=4)
    want = expected(model, tokenizer, eos_token_id=[tokenizer.eos_token_id, eot])
    assert [(g.text, g.completion_tokens) for g in outputs] == want


def test_server_stops_where_generate_stops(steered):
    import openai

    from harness.serve.backend import LocalBackend
    from harness.serve.runtime import serve_in_thread

    name, path, model, tokenizer = steered
    want = expected(model, tokenizer)
    with serve_in_thread(LocalBackend(name, path, batch_size=4, device="cpu")) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="local", max_retries=0)
        for prompt, (text, n_tokens) in zip(conversations(), want, strict=True):
            reply = client.chat.completions.create(model=name, messages=prompt, max_tokens=MAX_NEW, temperature=0)
            assert reply.choices[0].message.content == text
            assert reply.usage.completion_tokens == n_tokens


def test_raw_completion_stops_on_the_config_ids(steered):
    import torch

    from harness.serve.backend import complete_texts

    _, _, model, tokenizer = steered
    texts = [tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=False) for p in conversations()]
    got = complete_texts(model, tokenizer, texts[:1], DecodeParams(max_new_tokens=MAX_NEW))[0]
    ids = tokenizer(texts[0])["input_ids"]
    with torch.inference_mode():
        row = model.generate(torch.tensor([ids]), max_new_tokens=MAX_NEW, do_sample=False)[0, len(ids):].tolist()
    assert (got.text, got.completion_tokens) == (tokenizer.decode(row, skip_special_tokens=True), len(row))

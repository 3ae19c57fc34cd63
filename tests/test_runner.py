"""The evaluation runner on a real tiny model: batching never changes outputs."""

import pytest

from harness.protocol import DecodeParams

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model_and_tokenizer(tiny_base):
    from harness.backends.hf.inference import load_model

    return load_model(tiny_base)


def test_batched_generation_equals_one_at_a_time(model_and_tokenizer, sentiment_eval):
    from harness.backends.hf.inference import generate_batch

    model, tokenizer = model_and_tokenizer
    prompts = [ex.prompt for ex in sentiment_eval.examples[:24]]
    params = DecodeParams(max_new_tokens=8)
    batched = generate_batch(model, tokenizer, prompts, params, batch_size=8)
    single = [generate_batch(model, tokenizer, [p], params, batch_size=1)[0] for p in prompts]
    assert [g.text for g in batched] == [g.text for g in single]
    assert [g.completion_tokens for g in batched] == [g.completion_tokens for g in single]
    assert all(g.prompt_tokens > 0 for g in batched)
    assert all(0 < g.completion_tokens <= 8 for g in batched)


def test_stop_strings_cut_the_reply(model_and_tokenizer, sentiment_eval):
    from harness.backends.hf.inference import generate_batch

    model, tokenizer = model_and_tokenizer
    prompts = [ex.prompt for ex in sentiment_eval.examples[:8]]
    full = generate_batch(model, tokenizer, prompts, DecodeParams(max_new_tokens=12))
    word = next(g.text.split()[1] for g in full if len(g.text.split()) > 2)
    cut = generate_batch(model, tokenizer, prompts, DecodeParams(max_new_tokens=12, stop=(word,)))
    for f, c in zip(full, cut, strict=True):
        assert word not in c.text
        assert f.text.startswith(c.text)


def test_label_likelihood_matches_a_direct_forward_pass(model_and_tokenizer, sentiment_eval):
    import torch

    from harness.backends.hf.likelihood import label_log_likelihoods, predict_by_likelihood

    model, tokenizer = model_and_tokenizer
    labels = ["positive", "negative"]
    prompts = [ex.prompt for ex in sentiment_eval.examples[:6]]
    batched = label_log_likelihoods(model, tokenizer, prompts, labels, batch_size=5)
    for prompt, row in zip(prompts, batched, strict=True):
        prompt_ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True,
                                                   return_dict=True)["input_ids"]
        for label, score in zip(labels, row, strict=True):
            target = tokenizer(label, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
            ids = torch.tensor([list(prompt_ids) + target])
            with torch.inference_mode():
                logp = torch.log_softmax(model(input_ids=ids).logits.float(), dim=-1)[0]
            direct = sum(float(logp[len(prompt_ids) - 1 + i, t]) for i, t in enumerate(target))
            assert score == pytest.approx(direct, abs=1e-4)
    predicted = predict_by_likelihood(model, tokenizer, prompts, labels)
    assert predicted == [labels[max(range(2), key=lambda i, r=r: r[i])] for r in batched]

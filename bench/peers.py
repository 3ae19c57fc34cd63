"""ft-harness beside lm-evaluation-harness (``--model hf``): same model, same rendered prompts.

Needs the optional ``bench`` extra (``pip install -e .[bench]``, lm-eval[hf] 0.4.13); without it
the benchmark says so and measures nothing. Label likelihood: every eval prompt rendered with the
chat template is the context and ``label + end-of-turn`` the continuation; lm-eval moves the
context's trailing whitespace into the continuation, which adds the same term to every label's
score, so agreement compares predicted labels and label-score differences. Greedy generation:
lm-eval's ``generate_until`` on the same rendered prompts against the harness's batched runner.
"""

from __future__ import annotations

from bench.common import context, timed


def _lm_eval():
    try:
        from lm_eval.api.instance import Instance
        from lm_eval.models.huggingface import HFLM
    except ImportError:
        return None
    return HFLM, Instance


def few_shot(examples, train, shots: int = 5):
    """Prompts with the same system prompt and ``shots`` labelled examples before each review."""
    head = [train.examples[0].prompt[0]]
    for ex in train.examples[:shots]:
        head += [ex.prompt[-1], {"role": "assistant", "content": ex.reference}]
    return [[*head, ex.prompt[-1]] for ex in examples]


def _likelihood(lm, Instance, model, tokenizer, prompts, labels, batch_size):
    from harness.backends.hf.inference import end_of_turn_text
    from harness.backends.hf.likelihood import label_log_likelihoods, pick_labels

    texts = tokenizer.apply_chat_template(prompts, add_generation_prompt=True, tokenize=False)
    eot = end_of_turn_text(tokenizer)
    eot_token = tokenizer.convert_ids_to_tokens(tokenizer(eot, add_special_tokens=False)["input_ids"][:1])[0]
    requests = [Instance("loglikelihood", {}, (text, label + eot_token), k)
                for text in texts for k, label in enumerate(labels)]
    ours_s, ours = timed(lambda: label_log_likelihoods(model, tokenizer, prompts, labels, batch_size=batch_size),
                         repeat=3)
    plain_s, _ = timed(lambda: label_log_likelihoods(model, tokenizer, prompts, labels, batch_size=batch_size,
                                                     share_prefix=False), repeat=3)
    theirs_s, flat = timed(lambda: lm.loglikelihood(requests, disable_tqdm=True), repeat=3)
    theirs = [[flat[i * len(labels) + j][0] for j in range(len(labels))] for i in range(len(prompts))]
    same = pick_labels(ours, labels) == pick_labels(theirs, labels)
    gap = max(abs((o[j] - o[0]) - (t[j] - t[0])) for o, t in zip(ours, theirs, strict=True)
              for j in range(len(labels)))
    return {"prompts": len(prompts), "ft_harness_s": round(ours_s, 3), "ft_harness_no_prefix_cache_s": round(plain_s, 3),
            "lm_eval_s": round(theirs_s, 3), "speedup_vs_lm_eval": round(theirs_s / ours_s, 2),
            "speedup_vs_lm_eval_without_prefix_cache": round(theirs_s / plain_s, 2),
            "predictions_identical": same, "max_label_score_difference_gap": float(f"{gap:.2e}")}


def _generation(lm, Instance, model, tokenizer, prompts, max_new_tokens, batch_size):
    from harness.backends.hf.inference import generate_batch
    from harness.protocol import DecodeParams

    texts = tokenizer.apply_chat_template(prompts, add_generation_prompt=True, tokenize=False)
    requests = [Instance("generate_until", {}, (text, {"until": [], "max_gen_toks": max_new_tokens,
                                                       "do_sample": False}), 0) for text in texts]
    params = DecodeParams(max_new_tokens=max_new_tokens)
    ours_s, ours = timed(lambda: generate_batch(model, tokenizer, prompts, params, batch_size=batch_size), repeat=3)
    theirs_s, theirs = timed(lambda: lm.generate_until(requests, disable_tqdm=True), repeat=3)
    agree = sum(o.text == t.strip() for o, t in zip(ours, theirs, strict=True))
    return {"prompts": len(prompts), "max_new_tokens": max_new_tokens, "ft_harness_s": round(ours_s, 3),
            "lm_eval_s": round(theirs_s, 3), "speedup_vs_lm_eval": round(theirs_s / ours_s, 2),
            "outputs_identical": agree == len(prompts), "outputs_agreeing": agree}


def run(batch_size: int = 32, max_new_tokens: int = 16) -> dict[str, object]:
    peer = _lm_eval()
    if peer is None:
        return {"skipped": "lm-eval is not installed: pip install -e .[bench]"}
    HFLM, Instance = peer
    import lm_eval

    from harness.backends.hf.inference import load_model
    from harness.data import load_split

    ctx = context()
    model, tokenizer = load_model(ctx.base_model_dir(), device="cpu")
    suite = ctx.spec.suite("sentiment")
    split = load_split(suite.eval, name="eval")
    train = load_split(suite.train, name="train")
    labels = list(suite.labels)
    lm = HFLM(pretrained=model, tokenizer=tokenizer, device="cpu", batch_size=batch_size,
              max_length=int(model.config.max_position_embeddings))
    zero_shot = [ex.prompt for ex in split.examples]
    # the base model's context is 256 tokens: the few-shot prompts use the shortest reviews
    short = sorted(split.examples, key=lambda ex: len(ex.prompt[-1]["content"]))[:64]
    return {
        "lm_eval": lm_eval.__version__,
        "likelihood_zero_shot": _likelihood(lm, Instance, model, tokenizer, zero_shot, labels, batch_size),
        "likelihood_5_shot": _likelihood(lm, Instance, model, tokenizer, few_shot(short, train), labels, batch_size),
        "greedy_generation": _generation(lm, Instance, model, tokenizer, zero_shot[:64], max_new_tokens,
                                         batch_size),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))

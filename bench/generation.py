"""Batched vs per-example generation, and label log-likelihood vs generation, on the default model."""

from __future__ import annotations

from bench.common import context, timed


def run(n_prompts: int = 64, max_new_tokens: int = 16, batch_size: int = 32) -> dict[str, float]:
    from harness.backends.hf.inference import generate_batch, load_model
    from harness.backends.hf.likelihood import predict_by_likelihood
    from harness.protocol import DecodeParams

    ctx = context()
    model, tokenizer = load_model(ctx.base_model_dir())
    suite = ctx.spec.suite("sentiment")
    split = suite.load_split("eval")
    prompts = [ex.prompt for ex in split.examples[:n_prompts]]
    params = DecodeParams(max_new_tokens=max_new_tokens)

    generate_batch(model, tokenizer, prompts[:4], params, batch_size=4)  # warm-up
    batched_s, batched = timed(lambda: generate_batch(model, tokenizer, prompts, params, batch_size=batch_size))
    single_s, single = timed(lambda: [generate_batch(model, tokenizer, [p], params, batch_size=1)[0]
                                      for p in prompts])
    identical = [g.text for g in batched] == [g.text for g in single]
    if not identical:
        raise AssertionError("batched and per-example generation disagree")

    labels = list(suite.labels)
    everything = [ex.prompt for ex in split.examples]  # the whole eval split, with the suite's decoding
    generate_s, _ = timed(lambda: generate_batch(model, tokenizer, everything, suite.decode, batch_size=batch_size),
                          repeat=3)
    likelihood_s, _ = timed(lambda: predict_by_likelihood(model, tokenizer, everything, labels, batch_size=batch_size),
                            repeat=3)
    return {
        "prompts": n_prompts,
        "max_new_tokens": max_new_tokens,
        "batch_size": batch_size,
        "per_example_s": round(single_s, 3),
        "batched_s": round(batched_s, 3),
        "batched_speedup": round(single_s / batched_s, 2),
        "outputs_identical": identical,
        "classification_prompts": len(everything),
        "classification_generate_s": round(generate_s, 3),
        "classification_likelihood_s": round(likelihood_s, 3),
        "likelihood_vs_generate_speedup": round(generate_s / likelihood_s, 2),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))

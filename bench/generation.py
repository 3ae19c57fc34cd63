"""Batched vs per-example generation, label log-likelihood vs generation, shared-prefix caching on a
5-shot suite (runs alternating, each round's ratio shown), batched vs per-prompt rendering, side by
side on the default model, and the time ``pytest --co suites/`` takes."""

from __future__ import annotations

from bench.common import context, timed
from harness.jsonio import strict_dumps


def _generation(model, tokenizer, split, suite, n_prompts, max_new_tokens, batch_size) -> dict[str, object]:
    from harness.backends.hf.inference import generate_batch
    from harness.backends.hf.likelihood import predict_by_likelihood
    from harness.protocol import DecodeParams

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


def five_shot(examples, train, shots: int = 5):
    """The same system prompt and ``shots`` labelled examples before each review."""
    head = [train.examples[0].prompt[0]]
    for ex in train.examples[:shots]:
        head += [ex.prompt[-1], {"role": "assistant", "content": ex.reference}]
    return [[*head, ex.prompt[-1]] for ex in examples]


def side_by_side(fns, rounds: int = 5) -> tuple[dict[str, float], list[dict[str, float]], dict[str, object]]:
    """Run every function once per round, in turn (so load on the machine hits all alike):
    the best time of each, each round's times, and each one's last result."""
    import time

    best: dict[str, float] = {}
    per_round: list[dict[str, float]] = []
    results: dict[str, object] = {}
    for _ in range(rounds):
        times = {}
        for name, fn in fns.items():
            began = time.perf_counter()
            results[name] = fn()
            times[name] = time.perf_counter() - began
            best[name] = min(best.get(name, float("inf")), times[name])
        per_round.append(times)
    return best, per_round, results


def _shared_prefix(model, tokenizer, split, train, labels, batch_size) -> dict[str, object]:
    from harness.backends.hf.inference import render_prompts
    from harness.backends.hf.likelihood import label_log_likelihoods, pick_labels
    from harness.backends.hf.prefix import shared_prefix_length

    prompts = five_shot(split.examples, train)
    rows = render_prompts(tokenizer, prompts)
    best, rounds, out = side_by_side({
        "on": lambda: label_log_likelihoods(model, tokenizer, prompts, labels, batch_size=batch_size),
        "off": lambda: label_log_likelihoods(model, tokenizer, prompts, labels, batch_size=batch_size,
                                             share_prefix=False),
    })
    on, off = out["on"], out["off"]
    same = pick_labels(on, labels) == pick_labels(off, labels)
    if not same:
        raise AssertionError("shared-prefix scoring changed a prediction")
    gap = max(abs(a - b) for r, s in zip(on, off, strict=True) for a, b in zip(r, s, strict=True))
    return {"prompts": len(prompts), "shots": 5, "batch_size": batch_size,
            "prompt_tokens_mean": round(sum(map(len, rows)) / len(rows), 1),
            "shared_prefix_tokens": shared_prefix_length(rows), "with_prefix_cache_s": round(best["on"], 3),
            "without_prefix_cache_s": round(best["off"], 3), "speedup": round(best["off"] / best["on"], 2),
            "speedup_each_round": [round(r["off"] / r["on"], 2) for r in rounds],
            "predictions_identical": same, "max_abs_score_difference": float(f"{gap:.2e}")}


def collection_time(rounds: int = 3) -> dict[str, object]:
    """Wall time of ``pytest --co -q suites/`` in a fresh interpreter (imports included)."""
    import subprocess
    import sys
    import time

    from bench.common import REPO

    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pytest", "--co", "-q", "suites/", "-p", "no:cacheprovider"],
                       cwd=REPO, check=True, capture_output=True)
        times.append(time.perf_counter() - began)
    return {"pytest_co_suites_s": round(min(times), 2), "each_round_s": [round(t, 2) for t in times]}


def _rendering(tokenizer, prompts) -> dict[str, object]:
    from harness.backends.hf.inference import render_prompts

    def one_by_one():
        return [list(tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=True,
                                                   return_dict=True)["input_ids"]) for p in prompts]

    single_s, single = timed(one_by_one, repeat=3)
    batched_s, batched = timed(lambda: render_prompts(tokenizer, prompts), repeat=3)
    if batched != single:
        raise AssertionError("batched rendering changed token ids")
    return {"prompts": len(prompts), "per_prompt_s": round(single_s, 4), "batched_s": round(batched_s, 4),
            "speedup": round(single_s / batched_s, 2), "ids_identical": True}


def run(n_prompts: int = 64, max_new_tokens: int = 16, batch_size: int = 32) -> dict[str, object]:
    from harness.backends.hf.inference import load_model
    from harness.data import load_split

    ctx = context()
    model, tokenizer = load_model(ctx.base_model_dir())
    suite = ctx.spec.suite("sentiment")
    split = load_split(suite.eval, name="eval")
    train = load_split(suite.train, name="train")
    result = _generation(model, tokenizer, split, suite, n_prompts, max_new_tokens, batch_size)
    result["shared_prefix_5_shot"] = _shared_prefix(model, tokenizer, split, train, list(suite.labels), batch_size)
    result["rendering"] = _rendering(tokenizer, five_shot(split.examples, train))
    result["collection"] = collection_time()
    return result


if __name__ == "__main__":

    print(strict_dumps(run(), indent=2))

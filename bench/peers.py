"""ft-harness beside lm-evaluation-harness (``--model hf``): same model, same conversations.

Needs the optional ``bench`` extra (``pip install -e .[bench]``, lm-eval[hf] 0.4.13); without it
the benchmark says so and measures nothing. Both tools start from the same chat conversations:
lm-eval renders each with its own ``HFLM.apply_chat_template`` (what ``--apply_chat_template``
does) inside its timed call, the harness renders them inside its own. Label likelihood: the
rendered prompt is the context and ``label + end-of-turn`` the continuation; lm-eval moves the
context's trailing whitespace into the continuation, which adds the same term to every label's
score, so agreement compares predicted labels and label-score differences. Greedy generation:
lm-eval's ``generate_until`` against the harness's batched runner, on zero-shot prompts and on
5-shot prompts (where the shared-prefix cache matters). Both run at the same batch size (the
harness's, 32) in alternating rounds; the harness without its prefix cache and lm-eval handed
text rendered beforehand (its rendering not timed) are timed beside them, and lm-eval at its own
default batch size (1) once, reported as such. Each row also gives the median CPU seconds of the
rounds (``cpu_s``), the measure that holds while other work shares the machine, and each model a
table of those ratios; the load average is recorded before and after. The same rows run on the embedded model
and on a compute-bound ~26 M-parameter Llama built from a config with the same tokenizer.
"""

from __future__ import annotations

import os

from bench.common import context
from harness.jsonio import strict_dumps


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


def _likelihood(lms, Instance, model, tokenizer, prompts, labels, batch_size, rounds: int = 3):
    from bench.generation import side_by_side
    from harness.backends.hf.inference import end_of_turn_text
    from harness.backends.hf.likelihood import label_log_likelihoods, pick_labels

    eot = end_of_turn_text(tokenizer)
    eot_token = tokenizer.convert_ids_to_tokens(tokenizer(eot, add_special_tokens=False)["input_ids"][:1])[0]

    def lm_eval(size: int):
        lm = lms[size]
        requests = [Instance("loglikelihood", {}, (lm.apply_chat_template(list(prompt)), label + eot_token), k)
                    for prompt in prompts for k, label in enumerate(labels)]
        return lm.loglikelihood(requests, disable_tqdm=True)

    fns, cpu = cpu_seconds({
        "ours": lambda: label_log_likelihoods(model, tokenizer, prompts, labels, batch_size=batch_size),
        "ours_no_prefix": lambda: label_log_likelihoods(model, tokenizer, prompts, labels, batch_size=batch_size,
                                                        share_prefix=False),
        "lm_eval": lambda: lm_eval(batch_size),
    })
    best, _, out = side_by_side(fns, rounds=rounds)
    default_s, _, _ = side_by_side({"lm_eval": lambda: lm_eval(1)}, rounds=1)
    ours, flat = out["ours"], out["lm_eval"]
    theirs = [[flat[i * len(labels) + j][0] for j in range(len(labels))] for i in range(len(prompts))]
    same = pick_labels(ours, labels) == pick_labels(theirs, labels)
    gap = max(abs((o[j] - o[0]) - (t[j] - t[0])) for o, t in zip(ours, theirs, strict=True)
              for j in range(len(labels)))
    return {"prompts": len(prompts), "batch_size_both": batch_size, "ft_harness_s": round(best["ours"], 3),
            "ft_harness_no_prefix_cache_s": round(best["ours_no_prefix"], 3), "lm_eval_s": round(best["lm_eval"], 3),
            "speedup_vs_lm_eval": round(best["lm_eval"] / best["ours"], 2),
            "cpu_s": {name: round(seconds, 3) for name, seconds in cpu.items()},
            "speedup_vs_lm_eval_cpu": round(cpu["lm_eval"] / cpu["ours"], 2),
            "speedup_vs_lm_eval_without_prefix_cache": round(best["lm_eval"] / best["ours_no_prefix"], 2),
            "lm_eval_default_batch_size_1_s": round(default_s["lm_eval"], 3),
            "speedup_vs_lm_eval_default_batch_size": round(default_s["lm_eval"] / best["ours"], 2),
            "predictions_identical": same, "max_label_score_difference_gap": float(f"{gap:.2e}")}


def cpu_seconds(fns):
    """``fns`` wrapped to record the median CPU seconds of their calls (this process's, all
    threads): on a machine other jobs share, CPU time measures the work where wall time measures
    the load. The dict fills as the calls run."""
    import statistics
    import time

    seen: dict[str, list[float]] = {}
    median: dict[str, float] = {}

    def wrap(name, fn):
        def timed():
            began = time.process_time()
            result = fn()
            seen.setdefault(name, []).append(time.process_time() - began)
            median[name] = statistics.median(seen[name])
            return result
        return timed

    return {name: wrap(name, fn) for name, fn in fns.items()}, median


def plain_generate(model, tokenizer, prompts, max_new_tokens: int, batch_size: int) -> list[str]:
    """Greedy replies from plain batched ``model.generate`` (left-padded, length-sorted batches, the
    harness's stop ids), cut at the first stop id and decoded as the harness decodes."""
    import torch

    from harness.backends.hf.inference import (
        cut_at_stop_ids,
        left_padded,
        render_prompts,
        stop_token_ids,
    )

    rows = render_prompts(tokenizer, prompts, share_prefix=False)
    stops = stop_token_ids(model, tokenizer)
    order = sorted(range(len(rows)), key=lambda i: (len(rows[i]), i))
    texts: list[str] = [""] * len(rows)
    for start in range(0, len(order), batch_size):
        batch = order[start:start + batch_size]
        input_ids, attention = left_padded([rows[i] for i in batch], tokenizer.pad_token_id)
        with torch.inference_mode():
            out = model.generate(input_ids=input_ids, attention_mask=attention, max_new_tokens=max_new_tokens,
                                 do_sample=False, eos_token_id=stops, pad_token_id=tokenizer.pad_token_id)
        for i, row in zip(batch, out[:, input_ids.shape[1]:].tolist(), strict=True):
            texts[i] = tokenizer.decode(cut_at_stop_ids(row, stops), skip_special_tokens=True).strip()
    return texts


def _generation(lms, Instance, model, tokenizer, prompts, max_new_tokens, batch_size, rounds: int = 5):
    from bench.generation import side_by_side
    from harness.backends.hf.inference import generate_batch, render_prompts
    from harness.backends.hf.prefix import shared_prefix_length
    from harness.protocol import DecodeParams

    def lm_eval(size: int):
        lm = lms[size]
        requests = [Instance("generate_until", {}, (lm.apply_chat_template(list(prompt)),
                                                    {"until": [], "max_gen_toks": max_new_tokens, "do_sample": False}), 0)
                    for prompt in prompts]
        return lm.generate_until(requests, disable_tqdm=True)

    texts = tokenizer.apply_chat_template([list(p) for p in prompts], add_generation_prompt=True, tokenize=False)
    rendered = [Instance("generate_until", {}, (text, {"until": [], "max_gen_toks": max_new_tokens,
                                                       "do_sample": False}), 0) for text in texts]
    params = DecodeParams(max_new_tokens=max_new_tokens)
    fns, cpu = cpu_seconds({
        "ours": lambda: generate_batch(model, tokenizer, prompts, params, batch_size=batch_size),
        "ours_no_prefix": lambda: generate_batch(model, tokenizer, prompts, params, batch_size=batch_size,
                                                 share_prefix=False),
        "lm_eval": lambda: lm_eval(batch_size),
        "lm_eval_prerendered": lambda: lms[batch_size].generate_until(rendered, disable_tqdm=True),
        "generate": lambda: plain_generate(model, tokenizer, prompts, max_new_tokens, batch_size),
    })
    best, rounds, out = side_by_side(fns, rounds=rounds)
    default_s, _, _ = side_by_side({"lm_eval": lambda: lm_eval(1)}, rounds=1)
    ours, theirs, no_prefix = out["ours"], out["lm_eval"], out["ours_no_prefix"]
    agree = sum(o.text == t.strip() for o, t in zip(ours, theirs, strict=True))
    plain_agree = sum(o.text == t for o, t in zip(ours, out["generate"], strict=True))
    if agree != len(prompts) or plain_agree != len(prompts):
        raise AssertionError(f"greedy replies differ: {len(prompts) - agree} from lm-eval's, "
                             f"{len(prompts) - plain_agree} from model.generate's, of {len(prompts)}")
    rows = render_prompts(tokenizer, prompts)
    return {"prompts": len(prompts), "prompt_tokens_mean": round(sum(map(len, rows)) / len(rows), 1),
            "shared_prefix_tokens": shared_prefix_length(rows), "max_new_tokens": max_new_tokens,
            "reply_tokens_mean": round(sum(g.completion_tokens for g in ours) / len(ours), 1),
            "batch_size_both": batch_size, "ft_harness_s": round(best["ours"], 3),
            "ft_harness_no_prefix_cache_s": round(best["ours_no_prefix"], 3), "lm_eval_s": round(best["lm_eval"], 3),
            "speedup_vs_lm_eval": round(best["lm_eval"] / best["ours"], 2),
            "speedup_each_round": [round(r["lm_eval"] / r["ours"], 2) for r in rounds],
            "speedup_vs_lm_eval_without_prefix_cache": round(best["lm_eval"] / best["ours_no_prefix"], 2),
            "lm_eval_given_rendered_text_s": round(best["lm_eval_prerendered"], 3),
            "speedup_vs_lm_eval_given_rendered_text": round(best["lm_eval_prerendered"] / best["ours"], 2),
            "lm_eval_default_batch_size_1_s": round(default_s["lm_eval"], 3),
            "speedup_vs_lm_eval_default_batch_size": round(default_s["lm_eval"] / best["ours"], 2),
            "cpu_s": {name: round(seconds, 3) for name, seconds in cpu.items()},
            "speedup_vs_lm_eval_cpu": round(cpu["lm_eval"] / cpu["ours"], 2),
            "speedup_vs_plain_generate_cpu": round(cpu["generate"] / cpu["ours"], 2),
            "plain_generate_s": round(best["generate"], 3),
            "speedup_vs_plain_generate": round(best["generate"] / best["ours"], 2),
            "outputs_identical": agree == len(prompts), "outputs_agreeing": agree,
            "outputs_identical_to_plain_generate": plain_agree == len(prompts),
            "identical_without_prefix_cache": [g.text for g in no_prefix] == [g.text for g in ours]}


#: a ~26 M-parameter Llama: big enough that the forwards, not per-step overhead, take the time
COMPUTE_BOUND = {"hidden_size": 512, "intermediate_size": 2048, "num_hidden_layers": 6,
                 "num_attention_heads": 8, "num_key_value_heads": 8, "max_position_embeddings": 512}


def compute_bound_model(tokenizer):
    """A compute-bound Llama built from a config (seeded random weights) with ``tokenizer``."""
    from harness.backends.hf.tiny import TinyModelConfig, build_model

    return build_model(tokenizer, TinyModelConfig(**COMPUTE_BOUND)).eval()


def _rows(HFLM, Instance, model, tokenizer, split, train, labels, batch_size, max_new_tokens, rounds):
    """The four side-by-side rows of one model and their table."""
    # lm-eval at the harness's batch size (the fair comparison) and at its own default, 1
    lms = {size: HFLM(pretrained=model, tokenizer=tokenizer, device="cpu", batch_size=size,
                      max_length=int(model.config.max_position_embeddings)) for size in {1, batch_size}}
    zero_shot = [ex.prompt for ex in split.examples]
    # the base model's context is 256 tokens: the few-shot prompts use the shortest reviews
    short = sorted(split.examples, key=lambda ex: len(ex.prompt[-1]["content"]))[:64]
    rows = {
        "parameters": sum(p.numel() for p in model.parameters()),
        "likelihood_zero_shot": _likelihood(lms, Instance, model, tokenizer, zero_shot, labels, batch_size, rounds),
        "likelihood_5_shot": _likelihood(lms, Instance, model, tokenizer, few_shot(short, train), labels, batch_size,
                                         rounds),
        "greedy_generation": _generation(lms, Instance, model, tokenizer, zero_shot[:64], max_new_tokens,
                                         batch_size, rounds),
        "greedy_generation_5_shot": _generation(lms, Instance, model, tokenizer, few_shot(short, train),
                                                max_new_tokens, batch_size, rounds),
    }
    return {**rows, "table_median_cpu_s_ratios": table(rows)}


def table(rows) -> dict[str, dict[str, float]]:
    """The side-by-side ratios (median CPU seconds of alternating rounds) as one table."""
    zero, five = rows["greedy_generation"], rows["greedy_generation_5_shot"]
    return {
        "greedy generation vs lm-eval generate_until": {"zero_shot": zero["speedup_vs_lm_eval_cpu"],
                                                         "5_shot": five["speedup_vs_lm_eval_cpu"]},
        "greedy generation vs plain batched model.generate": {"zero_shot": zero["speedup_vs_plain_generate_cpu"],
                                                               "5_shot": five["speedup_vs_plain_generate_cpu"]},
        "label likelihood vs lm-eval loglikelihood": {"zero_shot": rows["likelihood_zero_shot"]["speedup_vs_lm_eval_cpu"],
                                                      "5_shot": rows["likelihood_5_shot"]["speedup_vs_lm_eval_cpu"]},
    }


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
    common = (split, train, labels, batch_size, max_new_tokens)
    load_before = os.getloadavg()
    return {
        "lm_eval": lm_eval.__version__,
        **_rows(HFLM, Instance, model, tokenizer, *common, rounds=5),
        # same tokenizer, prompts and batch size on a model where the forwards dominate
        "compute_bound": _rows(HFLM, Instance, compute_bound_model(tokenizer), tokenizer, *common, rounds=3),
        "load_average_before_after": [round(x, 2) for x in (*load_before, *os.getloadavg())],
    }


if __name__ == "__main__":

    print(strict_dumps(run(), indent=2))

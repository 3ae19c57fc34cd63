"""Model identity by content: a different adapter under the same name never reuses cached outputs."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from harness.protocol import DecodeParams

pytestmark = pytest.mark.slow


def _random_adapter(base: Path, out: Path, seed: int) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base),
                           LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False,
                                      task_type="CAUSAL_LM"))
    model.save_pretrained(out)
    return out


@pytest.fixture
def ctx(tmp_path, repo_root):
    from harness.cache import CacheStore
    from harness.context import BuildContext
    from harness.spec import load_spec

    spec = load_spec(repo_root / "fixtures" / "candidates.toml")
    return BuildContext(spec=spec, cache=CacheStore(tmp_path / "cache"), log=lambda _m: None)


def test_swapped_adapter_file_changes_fingerprint_and_misses_the_cache(ctx, tiny_base, sentiment_eval, tmp_path):
    from dataclasses import replace

    from harness.backends.hf.candidates import LocalCausalLM, model_fingerprint
    from harness.runner.evaluate import run_candidate

    first = _random_adapter(tiny_base, tmp_path / "a", seed=1)
    other = _random_adapter(tiny_base, tmp_path / "b", seed=2)
    assert (first / "adapter_config.json").read_bytes() == (other / "adapter_config.json").read_bytes()

    suite = replace(ctx.spec.suite("sentiment"), decode=DecodeParams(max_new_tokens=3))
    split = replace(sentiment_eval, examples=sentiment_eval.examples[:8])
    live = tmp_path / "live"
    shutil.copytree(first, live)
    fp_before = model_fingerprint(ctx, tiny_base, live)
    candidate = LocalCausalLM("lora", "lora", tiny_base, live, fp_before)
    _, _, hit = run_candidate(ctx, candidate, suite, split)
    assert hit == "miss"
    assert run_candidate(ctx, candidate, suite, split)[2] == "hit"

    # same directory, same name, same config: only the weights differ
    shutil.copy(other / "adapter_model.safetensors", live / "adapter_model.safetensors")
    ctx._fingerprints.clear()  # a new session hashes the files again
    fp_after = model_fingerprint(ctx, tiny_base, live)
    assert fp_after != fp_before
    swapped = LocalCausalLM("lora", "lora", tiny_base, live, fp_after)
    outputs, _, hit = run_candidate(ctx, swapped, suite, split)
    assert hit == "miss"  # re-evaluated, not another model's answers
    assert len(outputs) == len(split)


def test_fingerprint_ignores_location_but_not_tokenizer(ctx, tiny_base, tmp_path):
    from harness.backends.hf.candidates import model_fingerprint

    moved = tmp_path / "moved"
    shutil.copytree(tiny_base, moved)
    assert model_fingerprint(ctx, moved, None) == model_fingerprint(ctx, tiny_base, None)
    config = moved / "tokenizer_config.json"
    config.write_text(config.read_text(encoding="utf-8").replace("<|end|>", "<|end|>", 1) + " ", encoding="utf-8")
    ctx._fingerprints.clear()
    assert model_fingerprint(ctx, moved, None) != model_fingerprint(ctx, tiny_base, None)


def test_decoding_settings_are_part_of_the_outputs_key(ctx, tiny_base, sentiment_eval):
    from dataclasses import replace

    from harness.backends.hf.candidates import LocalCausalLM, model_fingerprint
    from harness.runner.evaluate import run_candidate

    suite = ctx.spec.suite("sentiment")
    split = replace(sentiment_eval, examples=sentiment_eval.examples[:4])
    candidate = LocalCausalLM("base", "base", tiny_base, None, model_fingerprint(ctx, tiny_base, None))
    assert run_candidate(ctx, candidate, replace(suite, decode=DecodeParams(max_new_tokens=2)), split)[2] == "miss"
    assert run_candidate(ctx, candidate, replace(suite, decode=DecodeParams(max_new_tokens=3)), split)[2] == "miss"
    assert run_candidate(ctx, candidate, replace(suite, decode=DecodeParams(max_new_tokens=2)), split)[2] == "hit"


def test_progress_bar_counts_every_example_in_chunks(ctx, tiny_base, sentiment_eval, monkeypatch):
    """Prompts reach the candidate in chunks (outputs unchanged), and the bar counts them all."""
    import io
    from dataclasses import replace

    import tqdm.auto

    import harness.runner.evaluate as evaluate

    bars = []

    class RecordedBar(tqdm.auto.tqdm):
        """The real bar, drawn on every update into a buffer the test reads."""

        def __init__(self, *args, **kwargs):
            self.stream = io.StringIO()
            self.enabled = not kwargs.get("disable", False)  # close() disables every bar
            bars.append(self)
            super().__init__(*args, **{**kwargs, "file": self.stream, "mininterval": 0, "miniters": 1,
                                       "ascii": True})

    monkeypatch.setattr(tqdm.auto, "tqdm", RecordedBar)
    from harness.backends.hf.candidates import LocalCausalLM, model_fingerprint
    from harness.runner.evaluate import run_candidate

    monkeypatch.setattr(evaluate, "PROGRESS_CHUNK", 3)
    suite = replace(ctx.spec.suite("sentiment"), decode=DecodeParams(max_new_tokens=2), scoring="generate")
    split = replace(sentiment_eval, examples=sentiment_eval.examples[:7])
    candidate = LocalCausalLM("generated", "base", tiny_base, None, model_fingerprint(ctx, tiny_base, None))
    seen = []
    original = candidate.generate
    candidate.generate = lambda prompts, params: seen.append(len(prompts)) or original(prompts, params)
    ctx.options = replace(ctx.options, progress=True)
    chunked, _, _ = run_candidate(ctx, candidate, suite, split)
    assert seen == [3, 3, 1]
    ours = [b for b in bars if b.desc.startswith("[ft-harness]")]  # the model loader draws its own
    assert len(ours) == 1 and ours[0].enabled and ours[0].total == 7
    drawn = ours[0].stream.getvalue()
    assert "[ft-harness] sentiment/generated" in drawn
    assert [int(n) for n in re.findall(r"(\d+)/7", drawn)] == [0, 3, 6, 7]
    assert ours[0].n == 7
    whole = original([ex.prompt for ex in split.examples], suite.decode)
    assert [g.text for g in chunked] == [g.text for g in whole]


def test_editing_one_eval_example_reruns_only_that_example(ctx, tiny_base, sentiment_eval):
    from dataclasses import replace

    from harness.backends.hf.candidates import LocalCausalLM, model_fingerprint
    from harness.runner.evaluate import run_candidate

    suite = replace(ctx.spec.suite("sentiment"), decode=DecodeParams(max_new_tokens=2), scoring="generate")
    split = replace(sentiment_eval, examples=sentiment_eval.examples[:6])
    candidate = LocalCausalLM("generated", "base", tiny_base, None, model_fingerprint(ctx, tiny_base, None))
    seen = []
    original = candidate.generate
    candidate.generate = lambda prompts, params: seen.append(len(prompts)) or original(prompts, params)
    first, _, status = run_candidate(ctx, candidate, suite, split)
    assert status == "miss" and seen == [6]

    edited = sentiment_eval.examples[6]  # a different review in place of the fourth example
    changed = replace(split, examples=[*split.examples[:3], edited, *split.examples[4:]])
    second, _, status = run_candidate(ctx, candidate, suite, changed)
    assert status == "partial" and seen == [6, 1]
    assert [g.text for i, g in enumerate(second) if i != 3] == [g.text for i, g in enumerate(first) if i != 3]
    assert run_candidate(ctx, candidate, suite, changed)[2] == "hit" and seen == [6, 1]

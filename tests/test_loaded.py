"""Existing work as candidates (adapter directories, saved / merged models) and
``ft-harness merge``: no training, predictions equal to loading the files by hand."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.errors import SpecError
from harness.protocol import DecodeParams

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
LABELS = ["positive", "negative"]


@pytest.fixture(scope="module")
def adapter_dir(tiny_base, tmp_path_factory) -> Path:
    """A LoRA adapter with non-zero (randomly initialised) A and B, saved with its tokenizer."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed

    set_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(str(tiny_base)),
                           LoraConfig(r=4, lora_alpha=32, target_modules="all-linear", init_lora_weights=False,
                                      task_type="CAUSAL_LM"))
    out = tmp_path_factory.mktemp("adapter")
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(str(tiny_base)).save_pretrained(out)
    return out


def _spec(root: Path, candidates: str) -> Path:
    lines = (FIXTURES / "sentiment" / "eval.jsonl").read_text(encoding="utf-8").splitlines()[:12]
    (root / "eval.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    text = ('[harness]\nseed = 0\n\n[suites.play]\ntask = "classification"\nlabels = ["positive", "negative"]\n'
            f'eval = "eval.jsonl"\ndecode = {{ max_new_tokens = 4 }}\n\n{candidates}')
    (root / "spec.toml").write_text(text, encoding="utf-8")
    return root / "spec.toml"


def _context(spec: Path, base: Path, cache: Path):
    from harness.cache import CacheStore
    from harness.context import BuildContext, BuildOptions
    from harness.spec import load_spec

    return BuildContext(spec=load_spec(spec), cache=CacheStore(cache), base_model=str(base),
                        options=BuildOptions(cache_root=cache), log=lambda message: None)


def _build(ctx, name: str):
    from harness.kinds import build_candidate

    suite = ctx.spec.suite("play")
    return build_candidate(ctx, suite, suite.candidate(name))


def _prompts(spec: Path):
    from harness.data import load_split

    return [ex.prompt for ex in load_split(spec.parent / "eval.jsonl", name="eval").examples]


def test_an_adapter_directory_is_a_candidate_without_training(tiny_base, adapter_dir, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.backends.hf.inference import generate_batch
    from harness.backends.hf.likelihood import label_log_likelihoods

    relative = os.path.relpath(adapter_dir, tmp_path)  # paths are relative to the spec file
    spec = _spec(tmp_path, f'[suites.play.candidates.shipped]\nkind = "adapter"\npath = "{relative}"\n\n'
                          '[suites.play.candidates.base]\nkind = "base"\n')
    ctx = _context(spec, tiny_base, tmp_path / "cache")
    shipped = _build(ctx, "shipped")
    assert Path(shipped.adapter_dir) == adapter_dir.resolve()
    assert Path(shipped.model_dir) == Path(tiny_base).resolve()  # the adapter's own base
    assert ctx.events == {"loaded": 1} and shipped.training is None
    assert shipped.fingerprint != _build(ctx, "base").fingerprint

    by_hand = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(tiny_base)), str(adapter_dir))
    by_hand.eval()
    tokenizer = AutoTokenizer.from_pretrained(str(adapter_dir))
    tokenizer.padding_side = "left"
    prompts = _prompts(spec)
    decode = DecodeParams(max_new_tokens=4)
    assert [g.text for g in shipped.generate(prompts, decode)] == \
           [g.text for g in generate_batch(by_hand, tokenizer, prompts, decode)]
    model, tok = shipped._model()
    assert torch.allclose(torch.tensor(label_log_likelihoods(model, tok, prompts, LABELS)),
                          torch.tensor(label_log_likelihoods(by_hand, tokenizer, prompts, LABELS)), atol=1e-6)


def test_merge_writes_a_model_whose_predictions_equal_the_adapters(tiny_base, adapter_dir, tmp_path, capsys):
    import torch

    from harness.backends.hf.likelihood import label_log_likelihoods
    from harness.cli import main

    merged = tmp_path / "merged"
    assert main(["merge", str(adapter_dir), str(merged)]) == 0
    assert "predictions on 4 probe prompts identical" in capsys.readouterr().out
    assert (merged / "config.json").exists() and (merged / "tokenizer_config.json").exists()
    assert not (merged / "adapter_config.json").exists()

    spec = _spec(tmp_path, f'[suites.play.candidates.adapter]\nkind = "adapter"\npath = "{adapter_dir}"\n\n'
                           '[suites.play.candidates.merged]\nkind = "model"\npath = "merged"\n')
    ctx = _context(spec, tiny_base, tmp_path / "cache")
    with_adapter, merged_model = _build(ctx, "adapter"), _build(ctx, "merged")
    assert merged_model.adapter_dir is None and Path(merged_model.model_dir) == merged.resolve()
    prompts = _prompts(spec)
    decode = DecodeParams(max_new_tokens=4)
    assert [g.text for g in merged_model.generate(prompts, decode)] == \
           [g.text for g in with_adapter.generate(prompts, decode)]
    a = torch.tensor(label_log_likelihoods(*with_adapter._model(), prompts, LABELS))
    b = torch.tensor(label_log_likelihoods(*merged_model._model(), prompts, LABELS))
    assert torch.allclose(a, b, atol=1e-4)

    # merging the same checks with the suite's own prompts, and refuses to overwrite
    assert main(["merge", str(adapter_dir), str(merged), "--force", "--check-data", str(spec.parent / "eval.jsonl")]) == 0
    assert "on 12 probe prompts identical" in capsys.readouterr().out
    assert main(["merge", str(adapter_dir), str(merged)]) == 3
    assert "not empty" in capsys.readouterr().err


def test_missing_or_wrong_paths_are_spec_errors_naming_the_key(tiny_base, tmp_path):
    (tmp_path / "not-an-adapter").mkdir()
    from harness.spec import load_spec

    with pytest.raises(SpecError, match=r"candidates\.x\.params: kind 'model' .* takes no params"):
        load_spec(_spec(tmp_path, '[suites.play.candidates.x]\nkind = "model"\npath = "merged"\nparams = { r = 4 }\n'))
    spec = _spec(tmp_path, '[suites.play.candidates.a]\nkind = "adapter"\npath = "not-an-adapter"\n\n'
                           '[suites.play.candidates.m]\nkind = "model"\npath = "no/such/model-dir"\n')
    ctx = _context(spec, tiny_base, tmp_path / "cache")
    with pytest.raises(SpecError, match=r"candidates\.a\.path: .*not-an-adapter is not a PEFT adapter directory"):
        _build(ctx, "a")
    with pytest.raises(SpecError, match=r"candidates\.m\.path: 'no/such/model-dir' is a path and "
                                        r".*no/such/model-dir does not exist"):  # a path: never asked of the hub
        _build(ctx, "m")


def test_an_adapter_over_the_wrong_base_fails_with_the_candidate_named(tiny_base, adapter_dir, tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    other = tmp_path / "other-base"
    LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=1,
                                 num_attention_heads=2, num_key_value_heads=2)).save_pretrained(other)
    spec = _spec(tmp_path, f'[suites.play.candidates.mismatch]\nkind = "adapter"\npath = "{adapter_dir}"\n'
                           'base = "other-base"\n')
    candidate = _build(_context(spec, tiny_base, tmp_path / "cache"), "mismatch")
    with pytest.raises(SpecError, match=r"candidate 'mismatch': cannot load model .*other-base with adapter"):
        candidate.generate(_prompts(spec), DecodeParams(max_new_tokens=2))

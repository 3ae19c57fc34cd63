"""Real tiny training runs: LoRA through TRL + PEFT, full fine-tuning through Trainer."""

from dataclasses import replace

import pytest

from harness.protocol import DecodeParams

pytestmark = pytest.mark.slow

LABELS = ["positive", "negative"]


def _small(split, n):
    return replace(split, examples=split.examples[:n])


def test_lora_adapter_reloads_with_identical_predictions(tiny_base, sentiment_train, sentiment_eval, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from harness.backends.hf.inference import generate_batch, load_model
    from harness.backends.hf.likelihood import label_log_likelihoods
    from harness.backends.hf.lora import fit_lora

    train = _small(sentiment_train, 96)
    model, tokenizer, summary = fit_lora(tiny_base, train, None, {"n_epochs": 2, "r": 4, "alpha": 8},
                                         tmp_path / "work", seed=0)
    assert 0 < summary.trainable_params < summary.total_params
    assert summary.train_loss is not None and summary.train_loss > 0
    assert summary.rows_dropped == 0
    model.save_pretrained(tmp_path / "adapter")
    tokenizer.save_pretrained(tmp_path / "adapter")
    assert (tmp_path / "adapter" / "adapter_config.json").exists()

    reloaded = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_base), tmp_path / "adapter")
    reloaded.eval()
    model.eval()
    prompts = [ex.prompt for ex in sentiment_eval.examples[:16]]
    tokenizer.padding_side = "left"
    params = DecodeParams(max_new_tokens=4)
    assert [g.text for g in generate_batch(model, tokenizer, prompts, params)] == \
           [g.text for g in generate_batch(reloaded, tokenizer, prompts, params)]
    a = torch.tensor(label_log_likelihoods(model, tokenizer, prompts, LABELS))
    b = torch.tensor(label_log_likelihoods(reloaded, tokenizer, prompts, LABELS))
    assert torch.allclose(a, b, atol=1e-5)

    # the same adapter through the harness loader
    loaded, tok = load_model(tiny_base, tmp_path / "adapter")
    c = torch.tensor(label_log_likelihoods(loaded, tok, prompts, LABELS))
    assert torch.allclose(a, c, atol=1e-5)


def test_lora_training_is_seeded(tiny_base, sentiment_train, tmp_path):
    from harness.backends.hf.lora import fit_lora

    train = _small(sentiment_train, 48)
    params = {"n_epochs": 1, "r": 4, "alpha": 8, "batch_size": 8, "logging_steps": 1}
    _, _, first = fit_lora(tiny_base, train, None, params, tmp_path / "a", seed=3)
    _, _, second = fit_lora(tiny_base, train, None, params, tmp_path / "b", seed=3)
    losses = lambda s: [e["loss"] for e in s.log_history if "loss" in e]  # noqa: E731
    assert losses(first) and losses(first) == losses(second)


def test_unknown_lora_parameter_is_refused():
    from harness.backends.hf.lora import lora_params
    from harness.errors import SpecError

    with pytest.raises(SpecError, match="unknown LoRA parameter 'rank'"):
        lora_params({"rank": 8})


def test_full_finetune_keeps_best_validation_checkpoint(tiny_base, sentiment_train, tmp_path):
    from harness.backends.hf.full import train_full

    train = _small(sentiment_train, 64)
    validation = replace(sentiment_train, name="validation", examples=sentiment_train.examples[64:96])
    summary = train_full(tiny_base, train, validation, {"n_epochs": 2, "batch_size": 16}, tmp_path / "full", seed=0)
    assert summary.trainable_params == summary.total_params
    evals = [e["eval_loss"] for e in summary.log_history if "eval_loss" in e]
    assert len(evals) >= 2
    # the saved model is the best checkpoint: its final evaluation equals the best epoch's loss
    assert summary.eval_loss == pytest.approx(min(evals[:-1]), rel=1e-5)
    assert (tmp_path / "full" / "config.json").exists()
    assert not (tmp_path / "full" / "_checkpoints").exists()

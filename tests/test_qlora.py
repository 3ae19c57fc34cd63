"""QLoRA on CPU: bitsandbytes 4-bit base + prepare_model_for_kbit_training + LoRA, and the saved
adapter reloads over the same 4-bit base with identical predictions."""

from __future__ import annotations

from dataclasses import replace

import pytest

from harness.protocol import DecodeParams

LABELS = ["positive", "negative"]


def _quantised_layers(model) -> set[str]:
    return {type(module).__name__ for module in model.modules()
            if type(module).__name__ in ("Linear4bit", "Linear8bitLt")}


@pytest.mark.slow
def test_4bit_qlora_trains_on_cpu_and_reloads_with_identical_predictions(tiny_base, sentiment_train,
                                                                         sentiment_eval, tmp_path):
    import torch

    from harness.backends.hf.candidates import LocalCausalLM
    from harness.backends.hf.inference import generate_batch
    from harness.backends.hf.likelihood import label_log_likelihoods
    from harness.backends.hf.lora import fit_lora, quantization_settings

    params = {"n_epochs": 1, "batch_size": 8, "r": 4, "alpha": 8, "load_in_4bit": True}
    train = replace(sentiment_train, examples=sentiment_train.examples[:8])
    model, tokenizer, summary = fit_lora(tiny_base, train, None, params, tmp_path / "work", seed=0)
    assert _quantised_layers(model) == {"Linear4bit"}
    assert summary.hyperparameters["load_in_4bit"] is True
    assert summary.train_loss is not None and summary.train_loss > 0
    assert 0 < summary.trainable_params < summary.total_params
    lora_a = next(p for n, p in model.named_parameters() if "lora_A" in n)
    assert lora_a.requires_grad  # the adapter trained; the 4-bit base stayed frozen
    assert not any(p.requires_grad for n, p in model.named_parameters() if "lora_" not in n)
    model.save_pretrained(tmp_path / "adapter")
    tokenizer.save_pretrained(tmp_path / "adapter")

    settings = quantization_settings(params)
    reloaded = LocalCausalLM("qlora", "lora", tiny_base, tmp_path / "adapter", "fp", quantization=settings)
    reloaded_model, reloaded_tokenizer = reloaded._model()
    assert _quantised_layers(reloaded_model) == {"Linear4bit"}

    model.eval()
    tokenizer.padding_side = "left"
    prompts = [ex.prompt for ex in sentiment_eval.examples[:12]]
    trained = torch.tensor(label_log_likelihoods(model, tokenizer, prompts, LABELS))
    again = torch.tensor(label_log_likelihoods(reloaded_model, reloaded_tokenizer, prompts, LABELS))
    assert torch.equal(trained, again)
    decode = DecodeParams(max_new_tokens=4)
    assert [g.text for g in generate_batch(model, tokenizer, prompts, decode)] == \
           [g.text for g in reloaded.generate(prompts, decode)]
    assert reloaded.predict_labels(prompts, LABELS) == [LABELS[int(row.argmax())] for row in trained]


def test_8bit_loading_reaches_bitsandbytes_and_is_prepared_for_kbit_training(tiny_base):
    from harness.backends.hf.lora import load_base_for_training, lora_params

    model = load_base_for_training(tiny_base, lora_params({"load_in_8bit": True, "gradient_checkpointing": True}))
    assert _quantised_layers(model) == {"Linear8bitLt"}
    assert getattr(model, "is_loaded_in_8bit", False)
    # prepare_model_for_kbit_training froze the base, turned on gradient checkpointing and made
    # the input embeddings feed gradients to the (checkpointed) adapter layers
    assert not any(p.requires_grad for p in model.parameters())
    assert model.is_gradient_checkpointing
    assert model.get_input_embeddings()._forward_hooks


def test_quantisation_is_part_of_a_candidate_identity(tmp_path):
    from harness.backends.hf.lora import lora_params, quantization_settings

    assert quantization_settings(lora_params({})) is None
    four = quantization_settings(lora_params({"load_in_4bit": True, "bnb_4bit_use_double_quant": True}))
    assert four == {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": True}
    assert quantization_settings(lora_params({"load_in_8bit": True})) == {"load_in_8bit": True}

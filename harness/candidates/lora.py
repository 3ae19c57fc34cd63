"""LoRA fine-tuning with PEFT + TRL's SFTTrainer on chat data, assistant-only loss.

Counts what SFTTrainer would silently drop (rows whose assistant reply is truncated away) and
truncate, and reports both in the training summary.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from harness.candidates.protocol import TrainingSummary
from harness.data.records import Split

LORA_DEFAULTS: dict[str, Any] = {
    "n_epochs": 3,
    "batch_size": 16,
    "learning_rate": 2e-3,
    "lr_scheduler_type": "linear",
    "warmup_steps": 0,  # an int, or a float in [0, 1) for a share of all steps
    "weight_decay": 0.0,
    "gradient_accumulation_steps": 1,
    "gradient_checkpointing": False,
    "r": 8,
    "alpha": 16,
    "dropout": 0.0,
    "target_modules": "all-linear",
    "modules_to_save": None,
    "bias": "none",
    "max_length": 256,
    "precision": "auto",
    "load_in_8bit": False,
    "load_in_4bit": False,
    "logging_steps": 5,
}


def lora_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Defaults overlaid with ``params``; unknown keys are refused (typos never pass silently)."""
    from harness.errors import SpecError

    merged = dict(LORA_DEFAULTS)
    for key, value in (params or {}).items():
        if key not in LORA_DEFAULTS:
            raise SpecError(f"unknown LoRA parameter {key!r}; known: {', '.join(sorted(LORA_DEFAULTS))}")
        merged[key] = value
    return merged


def to_chat_dataset(split: Split):
    """A ``datasets.Dataset`` of ``{"messages": [...]}`` rows as SFTTrainer expects."""
    from datasets import Dataset

    return Dataset.from_list([{"messages": [dict(m) for m in ex.messages]} for ex in split.examples])


def count_parameters(model) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


def load_base_for_training(base_dir: Path, p: Mapping[str, Any]):
    """The base model, quantised through bitsandbytes when 8-bit or 4-bit loading is asked for."""
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    if p["load_in_8bit"] or p["load_in_4bit"]:
        import torch
        from peft import prepare_model_for_kbit_training

        quant = BitsAndBytesConfig(
            load_in_8bit=bool(p["load_in_8bit"]),
            load_in_4bit=bool(p["load_in_4bit"]),
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=torch.bfloat16 if torch.cuda.is_available() else torch.float32,
        )
        model = AutoModelForCausalLM.from_pretrained(str(base_dir), quantization_config=quant)
        return prepare_model_for_kbit_training(model, use_gradient_checkpointing=bool(p["gradient_checkpointing"]))
    return AutoModelForCausalLM.from_pretrained(str(base_dir))


def train_lora(base_dir: Path, train: Split, validation: Split | None, params: Mapping[str, Any] | None,
               out_dir: Path, *, seed: int = 0,
               on_log: Callable[[dict[str, Any]], None] | None = None) -> TrainingSummary:
    """Train a LoRA adapter on ``train`` and save adapter + tokenizer into ``out_dir``."""
    model, tokenizer, summary = fit_lora(base_dir, train, validation, params, out_dir, seed=seed, on_log=on_log)
    model.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    return summary


def fit_lora(base_dir: Path, train: Split, validation: Split | None, params: Mapping[str, Any] | None,
             work_dir: Path, *, seed: int = 0, on_log: Callable[[dict[str, Any]], None] | None = None):
    """Train a LoRA adapter and return ``(peft_model, tokenizer, summary)`` without saving it."""
    from peft import LoraConfig
    from transformers import AutoTokenizer, TrainerCallback, set_seed
    from trl import SFTConfig, SFTTrainer

    from harness.candidates.hardware import mixed_precision_flags
    from harness.data.truncation import count_truncation

    p = lora_params(params)
    set_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = load_base_for_training(base_dir, p)
    truncation = count_truncation(train.examples, tokenizer, int(p["max_length"]))

    peft_config = LoraConfig(
        r=int(p["r"]), lora_alpha=int(p["alpha"]), lora_dropout=float(p["dropout"]),
        target_modules=p["target_modules"], modules_to_save=p["modules_to_save"], bias=p["bias"],
        task_type="CAUSAL_LM",
    )
    args = SFTConfig(
        output_dir=str(work_dir / "_checkpoints"),
        num_train_epochs=float(p["n_epochs"]),
        per_device_train_batch_size=int(p["batch_size"]),
        per_device_eval_batch_size=int(p["batch_size"]),
        gradient_accumulation_steps=int(p["gradient_accumulation_steps"]),
        gradient_checkpointing=bool(p["gradient_checkpointing"]),
        learning_rate=float(p["learning_rate"]),
        lr_scheduler_type=str(p["lr_scheduler_type"]),
        warmup_steps=p["warmup_steps"],
        weight_decay=float(p["weight_decay"]),
        logging_steps=int(p["logging_steps"]),
        eval_strategy="epoch" if validation is not None else "no",
        save_strategy="no",
        max_length=int(p["max_length"]),
        assistant_only_loss=True,
        report_to="none",
        seed=seed,
        data_seed=seed,
        disable_tqdm=True,
        dataloader_num_workers=0,
        **mixed_precision_flags(p["precision"]),
    )

    history: list[dict[str, Any]] = []

    class _Record(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs:
                entry = {"step": state.global_step, "epoch": state.epoch, **logs}
                history.append(entry)
                if on_log:
                    on_log(entry)

    trainer = SFTTrainer(
        model=model, args=args,
        train_dataset=to_chat_dataset(train),
        eval_dataset=to_chat_dataset(validation) if validation is not None else None,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=[_Record()],
    )
    rows_kept = len(trainer.train_dataset)
    trainable, total = count_parameters(trainer.model)
    began = time.perf_counter()
    output = trainer.train()
    runtime = time.perf_counter() - began
    eval_loss = None
    if validation is not None:
        eval_loss = float(trainer.evaluate()["eval_loss"])
    import shutil

    shutil.rmtree(work_dir / "_checkpoints", ignore_errors=True)
    return trainer.model, tokenizer, TrainingSummary(
        hyperparameters={**p, "seed": seed},
        runtime_s=runtime,
        trainable_params=trainable,
        total_params=total,
        train_loss=float(output.training_loss),
        eval_loss=eval_loss,
        log_history=history,
        rows_dropped=max(truncation.dropped, len(train) - rows_kept),
        rows_truncated=truncation.truncated,
    )

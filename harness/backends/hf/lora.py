"""LoRA fine-tuning with PEFT + TRL's SFTTrainer on chat data, loss on assistant tokens only:
TRL's assistant-only loss where the chat template has ``{% generation %}`` markers, else the
harness's own assistant mask (``harness.data.truncation.assistant_mask``) on pre-tokenized rows.

QLoRA: with ``load_in_8bit`` / ``load_in_4bit`` the base is quantised by bitsandbytes and
prepared with ``peft.prepare_model_for_kbit_training`` before the adapter is attached.
Counts what SFTTrainer would silently drop (rows whose assistant reply is truncated away) and
truncate, and reports both in the training summary.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from harness.backends.hf.full import loss_mask_name
from harness.data.records import Split
from harness.data.truncation import assistant_mask, count_truncation, has_generation_markers
from harness.errors import SpecError
from harness.protocol import TrainingSummary
from harness.training.arguments import trainer_arguments, training_callbacks
from harness.training.params import SCHEDULE_DEFAULTS, ParamError, check_adapter_params, number
from harness.training.recipe import Prepared, Recipe, TrainingJob

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
    "target_modules": "all-linear",  # or a list of module names, e.g. ["q_proj", "v_proj"]
    "modules_to_save": None,         # e.g. ["lm_head"]: trained fully and saved with the adapter
    "bias": "none",                  # "none", "all" or "lora_only"
    "max_length": 256,
    "precision": "auto",
    "load_in_8bit": False,
    "load_in_4bit": False,
    "bnb_4bit_quant_type": "nf4",
    "bnb_4bit_use_double_quant": False,
    "logging_steps": 5,
    **SCHEDULE_DEFAULTS,
}

QUANT_TYPES = ("nf4", "fp4")


def _check_lora_values(p: Mapping[str, Any]) -> None:

    check_adapter_params(p)
    if p["load_in_8bit"] and p["load_in_4bit"]:
        raise ParamError("load_in_4bit", "'load_in_8bit' and 'load_in_4bit' exclude each other; pick one")
    if p["bnb_4bit_quant_type"] not in QUANT_TYPES:
        raise ParamError("bnb_4bit_quant_type", f"expected one of {', '.join(QUANT_TYPES)}, "
                                                f"got {p['bnb_4bit_quant_type']!r}")


def lora_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Defaults overlaid with ``params``; unknown keys and impossible values are refused
    (typos never pass silently)."""
    return LORA.params(params)


def quantization_settings(p: Mapping[str, Any]) -> dict[str, Any] | None:
    """The bitsandbytes settings a (Q)LoRA run loads its base with, as plain data (None: full
    precision). Inference loads the base the same way, so the adapter sees what it trained on."""
    if p.get("load_in_4bit"):
        return {"load_in_4bit": True, "bnb_4bit_quant_type": str(p.get("bnb_4bit_quant_type", "nf4")),
                "bnb_4bit_use_double_quant": bool(p.get("bnb_4bit_use_double_quant", False))}
    if p.get("load_in_8bit"):
        return {"load_in_8bit": True}
    return None


def bitsandbytes_config(settings: Mapping[str, Any]):
    """A ``BitsAndBytesConfig`` for ``settings``; compute in bf16/fp16 on a GPU, fp32 on CPU."""
    import torch
    from transformers import BitsAndBytesConfig


    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise SpecError("8-bit / 4-bit loading needs the bitsandbytes package (pip install bitsandbytes)") from None
    if torch.cuda.is_available():
        compute = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    else:
        compute = torch.float32
    return BitsAndBytesConfig(bnb_4bit_compute_dtype=compute, **settings)


def load_quantized(model_dir: Path, settings: Mapping[str, Any]):
    """A causal LM loaded in 8-bit or 4-bit through bitsandbytes."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(model_dir), quantization_config=bitsandbytes_config(settings))


def to_chat_dataset(split: Split):
    """A ``datasets.Dataset`` of ``{"messages": [...]}`` rows as SFTTrainer expects."""
    from datasets import Dataset

    return Dataset.from_list([{"messages": [dict(m) for m in ex.messages]} for ex in split.examples])


def load_base_for_training(base_dir: Path, p: Mapping[str, Any]):
    """The base model, quantised through bitsandbytes and prepared for k-bit training (QLoRA)
    when 8-bit or 4-bit loading is asked for."""
    from transformers import AutoModelForCausalLM

    settings = quantization_settings(p)
    if settings is None:
        return AutoModelForCausalLM.from_pretrained(str(base_dir))
    from peft import prepare_model_for_kbit_training

    model = load_quantized(base_dir, settings)
    return prepare_model_for_kbit_training(model, use_gradient_checkpointing=bool(p["gradient_checkpointing"]))


def lora_config(p: Mapping[str, Any]):
    """The PEFT ``LoraConfig`` of the parameters."""
    from peft import LoraConfig


    return LoraConfig(
        r=int(p["r"]), lora_alpha=number(p["alpha"]),  # type: ignore[arg-type]  # peft takes a float too
        lora_dropout=float(p["dropout"]),
        target_modules=p["target_modules"], modules_to_save=p["modules_to_save"], bias=p["bias"],
        task_type="CAUSAL_LM",
    )


def _prepare(job: TrainingJob, output_dir: Path, checkpointing: bool) -> Prepared:
    """The configured ``SFTTrainer`` (PEFT model attached, data tokenized), not yet trained."""
    from transformers import AutoTokenizer, set_seed
    from trl import SFTConfig, SFTTrainer


    p, has_eval = job.params, job.validation is not None
    tokenizer = AutoTokenizer.from_pretrained(str(job.model_dir))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    # Assistant-only loss from the template's {% generation %} markers where it has them; else the
    # harness's own mask of the tokens each assistant turn adds (pre-tokenized rows for TRL).
    markers = has_generation_markers(tokenizer)
    dataset = to_chat_dataset if markers else (lambda split: to_masked_dataset(split, tokenizer))
    args = SFTConfig(
        **trainer_arguments(p, output_dir=output_dir, seed=job.seed, has_eval=has_eval,
                            checkpointing=checkpointing),
        max_length=int(p["max_length"]),
        assistant_only_loss=markers,
    )
    set_seed(job.seed)
    model = load_base_for_training(job.model_dir, p)
    truncation = count_truncation(job.train.examples, tokenizer, int(p["max_length"]))
    trainer = SFTTrainer(
        model=model, args=args,
        train_dataset=dataset(job.train),
        eval_dataset=dataset(job.validation) if job.validation is not None else None,
        processing_class=tokenizer,
        peft_config=lora_config(p),
        callbacks=training_callbacks(p, has_eval=has_eval, on_log=job.on_log),
    )
    return Prepared(trainer, tokenizer, rows_dropped=truncation.dropped, rows_truncated=truncation.truncated,
                    hyperparameters={"loss_mask": loss_mask_name(tokenizer)})


def to_masked_dataset(split: Split, tokenizer):
    """Pre-tokenized rows ``{"input_ids", "assistant_masks"}`` with the harness's assistant mask
    (for chat templates without generation markers); TRL turns the mask into labels."""
    from datasets import Dataset


    rows = []
    for ex in split.examples:
        ids = list(tokenizer.apply_chat_template(list(ex.messages), tokenize=True, return_dict=True)["input_ids"])
        rows.append({"input_ids": ids, "assistant_masks": assistant_mask(tokenizer, list(ex.messages))})
    return Dataset.from_list(rows)


def _finish(prepared: Prepared, job: TrainingJob) -> None:
    if quantization_settings(job.params) is not None:
        _upcast_adapter(prepared.trainer.model)


def _save(prepared: Prepared, out_dir: Path) -> None:
    """Adapter and tokenizer into ``out_dir`` (main process only)."""
    from accelerate import PartialState

    if PartialState().is_main_process:
        prepared.trainer.model.save_pretrained(str(out_dir))
        prepared.tokenizer.save_pretrained(str(out_dir))


def _remedies(p: Mapping[str, Any]) -> list[str]:
    if p.get("load_in_8bit") or p.get("load_in_4bit"):
        return []
    return ["8-bit or 4-bit base loading: load_in_8bit = true or load_in_4bit = true (QLoRA)"]


LORA = Recipe(kind="lora", title="LoRA", namespace="adapter", defaults=LORA_DEFAULTS, prepare=_prepare,
              save=_save, check=_check_lora_values, finish=_finish, remedies=_remedies)


def _job(base_dir: Path, train: Split, validation: Split | None, params: Mapping[str, Any] | None,
         seed: int, on_log: Callable[[dict[str, Any]], None] | None) -> TrainingJob:
    return TrainingJob(Path(base_dir), train, validation, LORA.params(params), seed, on_log=on_log)


def prepare_lora_trainer(base_dir: Path, train: Split, validation: Split | None,
                         params: Mapping[str, Any] | None, output_dir: Path, *, seed: int = 0,
                         checkpointing: bool = False,
                         on_log: Callable[[dict[str, Any]], None] | None = None):
    """The configured ``SFTTrainer``, not yet trained: ``(trainer, tokenizer, params, prepared)``."""
    job = _job(base_dir, train, validation, params, seed, on_log)
    prepared = _prepare(job, Path(output_dir), checkpointing)
    return prepared.trainer, prepared.tokenizer, dict(job.params), prepared


def train_lora(base_dir: Path, train: Split, validation: Split | None, params: Mapping[str, Any] | None,
               out_dir: Path, *, seed: int = 0,
               on_log: Callable[[dict[str, Any]], None] | None = None,
               checkpoint_dir: Path | None = None,
               log: Callable[[str], None] | None = None) -> TrainingSummary:
    """Train a LoRA adapter on ``train`` and save adapter + tokenizer into ``out_dir``.

    With ``checkpoint_dir`` the run checkpoints there and resumes from its last checkpoint.
    """
    job = _job(base_dir, train, validation, params, seed, on_log)
    return LORA.train(job, Path(out_dir), checkpoint_dir=checkpoint_dir, log=log)


def fit_lora(base_dir: Path, train: Split, validation: Split | None, params: Mapping[str, Any] | None,
             work_dir: Path, *, seed: int = 0, on_log: Callable[[dict[str, Any]], None] | None = None,
             checkpoint_dir: Path | None = None, log: Callable[[str], None] | None = None):
    """Train a LoRA adapter and return ``(peft_model, tokenizer, summary)`` without saving it.

    Checkpoints go to ``checkpoint_dir`` (kept, and resumed from on the next call) when given,
    else to a scratch folder in ``work_dir`` that is removed afterwards.
    """
    job = _job(base_dir, train, validation, params, seed, on_log)
    prepared, summary = LORA.fit(job, Path(work_dir), checkpoint_dir=checkpoint_dir, log=log)
    return prepared.trainer.model, prepared.tokenizer, summary


def _upcast_adapter(model) -> None:
    """TRL trains QLoRA adapter weights in bf16; PEFT upcasts them to fp32 when the saved adapter
    is loaded. Upcasting here (exact) makes the returned model compute as the reloaded one."""
    import torch

    for param in model.parameters():
        if param.requires_grad and param.dtype in (torch.bfloat16, torch.float16):
            param.data = param.data.to(torch.float32)

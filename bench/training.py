"""LoRA training through the harness vs the same TRL SFTTrainer configuration called directly."""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.common import context, timed
from harness.jsonio import strict_dumps

PARAMS = {"n_epochs": 2, "batch_size": 16, "learning_rate": 3e-3, "r": 16, "alpha": 32}


def _direct(base_dir: Path, split, out: Path) -> None:
    """The plain TRL + PEFT recipe, as a user would write it without the harness."""
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed
    from trl import SFTConfig, SFTTrainer

    set_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
    model = AutoModelForCausalLM.from_pretrained(str(base_dir))
    data = Dataset.from_list([{"messages": ex.messages} for ex in split.examples])
    args = SFTConfig(output_dir=str(out), num_train_epochs=PARAMS["n_epochs"],
                     per_device_train_batch_size=PARAMS["batch_size"], learning_rate=PARAMS["learning_rate"],
                     max_length=256, assistant_only_loss=True, report_to="none", seed=0, data_seed=0,
                     bf16=False, fp16=False, gradient_checkpointing=False, save_strategy="no",
                     logging_steps=5, disable_tqdm=True)
    peft_config = LoraConfig(r=PARAMS["r"], lora_alpha=PARAMS["alpha"], target_modules="all-linear",
                             task_type="CAUSAL_LM")
    trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer,
                         peft_config=peft_config)
    trainer.train()
    trainer.model.save_pretrained(str(out))


def run(repeat: int = 2) -> dict[str, float]:
    from harness.backends.hf.lora import train_lora
    from harness.data import load_split

    ctx = context()
    base_dir = ctx.base_model_dir()
    split = load_split(ctx.spec.suite("sentiment").train, name="train")
    work = Path(tempfile.mkdtemp(prefix="ft-bench-train-"))
    direct_times, harness_times = [], []
    for i in range(repeat):  # interleaved so drift hits both sides alike
        direct_times.append(timed(lambda i=i: _direct(base_dir, split, work / f"direct{i}"))[0])
        harness_times.append(timed(lambda i=i: train_lora(base_dir, split, None, PARAMS, work / f"harness{i}", seed=0))[0])
    direct_s, harness_s = min(direct_times), min(harness_times)
    return {
        "examples": len(split),
        "epochs": PARAMS["n_epochs"],
        "direct_trl_s": round(direct_s, 3),
        "harness_s": round(harness_s, 3),
        "overhead_pct": round(100.0 * (harness_s - direct_s) / direct_s, 1),
    }


if __name__ == "__main__":

    print(strict_dumps(run(), indent=2))

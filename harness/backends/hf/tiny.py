"""The embedded default base model: a tiny Llama and a BPE tokenizer built offline in seconds.

The tokenizer is trained on the fixture corpus and carries a chat template whose assistant turns
are wrapped in ``{% generation %}`` markers, so TRL's assistant-only loss works. A short
language-model warm-up over the unlabelled corpus makes the base write words rather than noise,
so an A/B against it measures task skill, not fluency. Everything is seeded and saved with
``save_pretrained``; later steps load it like any hub model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from harness.data.corpus import read_corpus
from harness.jsonio import strict_dumps

SPECIAL_TOKENS = {
    "bos_token": "<|bos|>",
    "eos_token": "<|end|>",
    "pad_token": "<|pad|>",
    "unk_token": "<|unk|>",
}
ROLE_TOKENS = ["<|system|>", "<|user|>", "<|assistant|>", "<|function|>"]

# The end-of-turn token sits inside the generation block, so the model is trained to stop.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'assistant' -%}"
    "{{ '<|assistant|>\n' }}{% generation %}{{ message['content'] }}{{ '<|end|>' }}"
    "{% endgeneration %}{{ '\n' }}"
    "{%- else -%}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + '<|end|>\n' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|assistant|>\n' }}{%- endif -%}"
)


@dataclass(frozen=True)
class TinyModelConfig:
    """Size and warm-up settings of the embedded base; all part of its cache key."""

    vocab_size: int = 1024
    hidden_size: int = 128
    intermediate_size: int = 256
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 4
    max_position_embeddings: int = 256
    warmup_epochs: float = 1.0
    warmup_batch_size: int = 32
    warmup_learning_rate: float = 3e-3
    warmup_max_length: int = 64
    seed: int = 0

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


#: The largest value of each size: the embedded base is meant to be tiny, and a typo such as
#: ``hidden_size = 10**12`` would otherwise allocate until memory runs out.
TINY_LIMITS: dict[str, float] = {
    "vocab_size": 65536, "hidden_size": 4096, "intermediate_size": 16384, "num_hidden_layers": 48,
    "num_attention_heads": 64, "num_key_value_heads": 64, "max_position_embeddings": 8192,
    "warmup_epochs": 100.0, "warmup_batch_size": 4096, "warmup_learning_rate": 1.0, "warmup_max_length": 8192,
}


def tiny_config_problem(values: dict[str, object]) -> tuple[str, str] | None:
    """``(key, problem)`` when the sizes in ``values`` (over the defaults) do not fit together as a
    Llama config must (transformers would refuse them, or fail in the first forward pass)."""
    config = TinyModelConfig(**values)  # type: ignore[arg-type]
    hidden, heads, kv = config.hidden_size, config.num_attention_heads, config.num_key_value_heads
    if hidden % heads:
        return "num_attention_heads", f"hidden_size = {hidden} must be divisible by num_attention_heads = {heads}"
    if (hidden // heads) % 2:
        return "num_attention_heads", (f"each head gets hidden_size / num_attention_heads = {hidden // heads} "
                                       "dimensions; rotary position embeddings need an even number")
    if kv > heads or heads % kv:
        return "num_key_value_heads", (f"num_attention_heads = {heads} must be a multiple of "
                                       f"num_key_value_heads = {kv}")
    if config.warmup_max_length > config.max_position_embeddings:
        return "warmup_max_length", (f"{config.warmup_max_length} exceeds max_position_embeddings = "
                                     f"{config.max_position_embeddings}")
    return None



def train_tokenizer(lines: list[str], vocab_size: int):
    """A byte-level BPE tokenizer trained on ``lines``, wrapped for transformers with a chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = [SPECIAL_TOKENS["pad_token"], SPECIAL_TOKENS["bos_token"], SPECIAL_TOKENS["eos_token"],
                SPECIAL_TOKENS["unk_token"], *ROLE_TOKENS]
    backend = Tokenizer(models.BPE(unk_token=SPECIAL_TOKENS["unk_token"]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(lines, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        additional_special_tokens=ROLE_TOKENS,
        **SPECIAL_TOKENS,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.padding_side = "left"
    tokenizer.model_max_length = 10_000
    return tokenizer


def build_model(tokenizer, config: TinyModelConfig):
    """A randomly initialised Llama sized by ``config``, seeded for reproducibility."""
    from transformers import LlamaConfig, LlamaForCausalLM, set_seed

    set_seed(config.seed)
    model_config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        num_key_value_heads=config.num_key_value_heads,
        max_position_embeddings=config.max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    return LlamaForCausalLM(model_config)


def warmup_texts(tokenizer, lines: list[str], seed: int) -> list[str]:
    """Unlabelled warm-up text: every corpus line as plain text, and once more as a chat turn
    answered by an unrelated line, so the base writes fluent words after the assistant marker
    without learning any task (the pairing is random)."""
    import random

    rng = random.Random(seed)
    replies = list(lines)
    rng.shuffle(replies)
    plain = [line + tokenizer.eos_token for line in lines]
    chats = [tokenizer.apply_chat_template([{"role": "user", "content": line},
                                            {"role": "assistant", "content": reply}], tokenize=False)
             for line, reply in zip(lines, replies, strict=True)]
    return plain + chats


def warm_up(model, tokenizer, lines: list[str], config: TinyModelConfig, work_dir: Path) -> dict:
    """A short causal-LM pass over the unlabelled corpus with transformers' Trainer."""
    from datasets import Dataset
    from transformers import DataCollatorForLanguageModeling, Trainer, TrainingArguments

    if config.warmup_epochs <= 0 or not lines:
        return {"warmup_steps": 0}
    dataset = Dataset.from_dict({"text": warmup_texts(tokenizer, lines, config.seed)})
    dataset = dataset.map(
        lambda batch: tokenizer(batch["text"], truncation=True, max_length=config.warmup_max_length),
        batched=True,
        remove_columns=["text"],
    )
    tokenizer.padding_side = "right"
    collator = DataCollatorForLanguageModeling(tokenizer, mlm=False)
    args = TrainingArguments(
        output_dir=str(work_dir),
        num_train_epochs=config.warmup_epochs,
        per_device_train_batch_size=config.warmup_batch_size,
        learning_rate=config.warmup_learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=5,
        logging_steps=20,
        save_strategy="no",
        report_to="none",
        seed=config.seed,
        data_seed=config.seed,
        use_cpu=True,
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    trainer = Trainer(model=model, args=args, train_dataset=dataset, data_collator=collator)
    output = trainer.train()
    tokenizer.padding_side = "left"
    return {"warmup_steps": output.global_step, "warmup_loss": float(output.training_loss)}


def build_tiny_base(out_dir: Path, *, corpus: Path, seed: int = 0,
                    config: TinyModelConfig | None = None) -> Path:
    """Build tokenizer + warmed-up tiny Llama from ``corpus`` and save both into ``out_dir``."""

    config = config or TinyModelConfig(seed=seed)
    lines = read_corpus(corpus)
    tokenizer = train_tokenizer(lines, config.vocab_size)
    model = build_model(tokenizer, config)
    out_dir.mkdir(parents=True, exist_ok=True)
    info = warm_up(model, tokenizer, lines, config, out_dir / "_warmup")
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    (out_dir / "ft-harness-base.json").write_text(
        strict_dumps({"config": config.as_dict(), **info}, indent=2, sort_keys=True), encoding="utf-8"
    )
    import shutil

    shutil.rmtree(out_dir / "_warmup", ignore_errors=True)
    return out_dir

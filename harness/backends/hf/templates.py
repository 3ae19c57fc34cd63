"""Tiny causal LMs with the chat formats real models use: ChatML, Llama-3 headers and Gemma turns.

Each format names its special tokens, its chat template (assistant replies wrapped in
``{% generation %}`` markers, so TRL's assistant-only loss works on them), the token that ends a
turn, and the stop ids its ``generation_config`` lists (several, as Llama 3, Phi-3 and Qwen ship).
The tokenizer's own ``eos_token`` is deliberately *not* the end-of-turn token, as in those models,
so code that stops only on ``tokenizer.eos_token_id`` shows its defect on them. The models are
random tiny Llamas built from a config with a BPE tokenizer trained on a few lines, offline in
well under a second; :func:`steer_token` makes one emit a chosen token wherever it would have
emitted another, so stop handling can be exercised on a real forward pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

_CHATML = (
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'assistant' -%}"
    "{{ '<|im_start|>assistant\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}"
    "{{ '\n' }}"
    "{%- else -%}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\n' }}{%- endif -%}"
)

_LLAMA3 = (
    "{{ bos_token }}"
    "{%- for message in messages -%}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' }}"
    "{%- if message['role'] == 'assistant' -%}"
    "{% generation %}{{ message['content'] | trim + '<|eot_id|>' }}{% endgeneration %}"
    "{%- else -%}"
    "{{ message['content'] | trim + '<|eot_id|>' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{%- endif -%}"
)

# Gemma has no system role: the system text opens the first user turn (as Gemma 3's template does).
_GEMMA = (
    "{{ bos_token }}"
    "{%- if messages and messages[0]['role'] == 'system' -%}"
    "{%- set system = messages[0]['content'] | trim + '\n\n' -%}{%- set messages = messages[1:] -%}"
    "{%- else -%}{%- set system = '' -%}{%- endif -%}"
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'assistant' -%}"
    "{{ '<start_of_turn>model\n' }}{% generation %}{{ message['content'] | trim + '<end_of_turn>' }}"
    "{% endgeneration %}{{ '\n' }}"
    "{%- else -%}"
    "{{ '<start_of_turn>' + message['role'] + '\n' + (system if loop.first else '') + message['content'] | trim"
    " + '<end_of_turn>\n' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}"
)


@dataclass(frozen=True)
class ChatFormat:
    """One documented chat format: its tokens, template, end-of-turn and generation-config stop ids."""

    name: str
    chat_template: str
    bos_token: str | None
    eos_token: str
    pad_token: str | None
    end_of_turn: str
    stop_tokens: tuple[str, ...]  # generation_config.eos_token_id, in this order
    extra_tokens: tuple[str, ...] = field(default=())

    def special_tokens(self) -> list[str]:
        """Every special token of the format, each once."""
        names = [self.bos_token, self.eos_token, self.pad_token, self.end_of_turn, *self.stop_tokens,
                 *self.extra_tokens]
        return list(dict.fromkeys(n for n in names if n))


FORMATS: dict[str, ChatFormat] = {
    # Qwen2.5 / ChatML: eos is <|endoftext|>, a turn ends with <|im_end|>; pad is <|endoftext|>.
    "chatml": ChatFormat("chatml", _CHATML, None, "<|endoftext|>", "<|endoftext|>", "<|im_end|>",
                         ("<|im_end|>", "<|endoftext|>"), ("<|im_start|>",)),
    # Llama 3: eos <|end_of_text|>, turns end with <|eot_id|>, tool calls with <|eom_id|>; no pad token.
    "llama3": ChatFormat("llama3", _LLAMA3, "<|begin_of_text|>", "<|end_of_text|>", None, "<|eot_id|>",
                         ("<|end_of_text|>", "<|eom_id|>", "<|eot_id|>"),
                         ("<|start_header_id|>", "<|end_header_id|>")),
    # Gemma: eos <eos>, turns end with <end_of_turn>.
    "gemma": ChatFormat("gemma", _GEMMA, "<bos>", "<eos>", "<pad>", "<end_of_turn>",
                        ("<eos>", "<end_of_turn>"), ("<start_of_turn>",)),
}

DEFAULT_LINES = (
    "the soup was tasty and the staff were kind",
    "the film was dull and far too long",
    "a lovely quiet room with a view of the sea",
    "the service was slow and the food was cold",
    "positive negative neutral answer the question",
    "classify the sentiment of the review",
    "one two three four five six seven eight nine ten",
    "what is the capital of france paris is the capital",
)


def train_format_tokenizer(fmt: ChatFormat | str, lines: Sequence[str] = DEFAULT_LINES, *, vocab_size: int = 320):
    """A byte-level BPE tokenizer trained on ``lines`` with ``fmt``'s special tokens and template.

    Newlines are split off before byte-level BPE, so a prompt ending in ``\\n`` tokenizes the same
    alone as when a reply follows it (as the real tokenizers of these formats do).
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    fmt = FORMATS[fmt] if isinstance(fmt, str) else fmt
    unk = "<unk>"
    specials = [*fmt.special_tokens(), unk]
    backend = Tokenizer(models.BPE(unk_token=unk))
    backend.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"\n"), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False),
    ])
    backend.decoder = decoders.ByteLevel()
    backend.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    backend.train_from_iterator(list(lines), trainer=trainer)
    named = {"eos_token": fmt.eos_token, "unk_token": unk}
    if fmt.bos_token:
        named["bos_token"] = fmt.bos_token
    if fmt.pad_token:
        named["pad_token"] = fmt.pad_token
    others = [t for t in fmt.special_tokens() if t not in named.values()]
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, additional_special_tokens=others, **named)
    tokenizer.chat_template = fmt.chat_template
    tokenizer.padding_side = "left"
    tokenizer.model_max_length = 4096
    return tokenizer


def build_format_model(tokenizer, fmt: ChatFormat | str, *, seed: int = 0, hidden_size: int = 32,
                       num_hidden_layers: int = 2, stop_tokens: Sequence[str] | None = None,
                       initializer_range: float = 0.02):
    """A random tiny Llama for ``tokenizer`` whose ``generation_config`` lists ``fmt``'s stop ids
    (a larger ``initializer_range`` makes its replies depend more on the prompt)."""
    from transformers import LlamaConfig, LlamaForCausalLM, set_seed

    fmt = FORMATS[fmt] if isinstance(fmt, str) else fmt
    set_seed(seed)
    stops = [tokenizer.convert_tokens_to_ids(t) for t in (stop_tokens or fmt.stop_tokens)]
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=2 * hidden_size,
                         num_hidden_layers=num_hidden_layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=1024, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=stops, pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False,
                         initializer_range=initializer_range)
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = stops
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.eval()
    return model


def steer_token(model, target_id: int, like_id: int, gain: float = 1.25) -> None:
    """Make ``model`` prefer ``target_id`` wherever it would emit ``like_id`` with a positive logit
    (its output-head row becomes ``gain`` times that of ``like_id``)."""
    import torch

    head = model.get_output_embeddings().weight
    with torch.no_grad():
        head[target_id] = head[like_id] * gain


def save_format_model(out_dir: Path, fmt: ChatFormat | str, *, lines: Sequence[str] = DEFAULT_LINES,
                      seed: int = 0, **model_options) -> Path:
    """Train a tokenizer, build the tiny model and save both (``save_pretrained``) into ``out_dir``."""
    tokenizer = train_format_tokenizer(fmt, lines)
    model = build_format_model(tokenizer, fmt, seed=seed, **model_options)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir

"""A tiny BERT encoder built offline: a WordPiece tokenizer trained on local text and a seeded,
randomly initialised ``BertModel``, saved with ``save_pretrained`` like any hub checkpoint."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

SPECIALS = {"pad_token": "[PAD]", "unk_token": "[UNK]", "cls_token": "[CLS]", "sep_token": "[SEP]",
            "mask_token": "[MASK]"}


@dataclass(frozen=True)
class TinyEncoderConfig:
    """Size of the tiny encoder and its tokenizer; all part of its cache key."""

    vocab_size: int = 1000
    hidden_size: int = 32
    intermediate_size: int = 64
    num_hidden_layers: int = 2
    num_attention_heads: int = 2
    max_position_embeddings: int = 128
    seed: int = 0

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def train_wordpiece(lines: Sequence[str], vocab_size: int, *, model_max_length: int = 128) -> Any:
    """A lower-casing BERT WordPiece tokenizer trained on ``lines`` with ``tokenizers``."""
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordPiece(unk_token=SPECIALS["unk_token"]))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=list(SPECIALS.values()),
                                        show_progress=False)
    backend.train_from_iterator(list(lines), trainer=trainer)
    cls_id, sep_id = backend.token_to_id(SPECIALS["cls_token"]), backend.token_to_id(SPECIALS["sep_token"])
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, model_max_length=model_max_length,
                                        **SPECIALS)
    tokenizer.padding_side = "right"
    return tokenizer


def build_tiny_encoder(out_dir: Path, lines: Sequence[str], config: TinyEncoderConfig | None = None) -> Path:
    """Train the tokenizer on ``lines``, build a seeded ``BertModel`` and save both into ``out_dir``."""
    from transformers import BertConfig, BertModel, set_seed

    config = config or TinyEncoderConfig()
    tokenizer = train_wordpiece(lines, config.vocab_size, model_max_length=config.max_position_embeddings)
    set_seed(config.seed)
    model = BertModel(BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        max_position_embeddings=config.max_position_embeddings,
        pad_token_id=tokenizer.pad_token_id,
    ))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    return out_dir

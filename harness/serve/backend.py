"""What the server generates with: one base model plus LoRA adapters on one PeftModel.

Every adapter is loaded onto the same :class:`peft.PeftModel` with ``load_adapter(...,
adapter_name=...)``; a request selects its adapter with ``set_adapter`` (or runs the bare base
under ``disable_adapter()``) while holding a lock, so concurrent requests never mix adapters.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

from harness.backends.hf import inference
from harness.backends.hf.inference import generate_encoded, render_prompts, stop_token_ids
from harness.data.records import Message
from harness.data.tokens import chat_template_ids
from harness.protocol import DecodeParams, Generation
from harness.serve.streaming import settled


@dataclass(frozen=True)
class ModelInfo:
    """One entry of ``/v1/models``."""

    id: str
    created: int
    owned_by: str
    fine_tunable: bool = False


class ReplyStream(Protocol):
    """Where a streamed generation reports each reply as it grows, and learns the client has gone."""

    def text(self, index: int, text: str) -> None:
        """Prompt ``index``'s reply so far (only text later tokens cannot change)."""
        ...

    def cancelled(self) -> bool:
        """True once nobody waits for the replies: generation stops after the current step."""
        ...


class ModelBackend(Protocol):
    """The generation side of the server; tests may supply a scripted one."""

    def models(self) -> list[ModelInfo]:
        """Every servable model id."""
        ...

    def base_dir(self, model: str) -> Path:
        """Directory of a fine-tunable base model (the trainer loads it from there)."""
        ...

    def count_tokens(self, model: str, messages: list[Message]) -> int:
        """Tokens of one training conversation under ``model``'s chat template."""
        ...

    def chat(self, model: str, prompts: Sequence[list[Message]], params: DecodeParams, *,
             stream: ReplyStream | None = None) -> list[Generation]:
        """One reply per chat prompt (reported to ``stream`` while it generates)."""
        ...

    def complete(self, model: str, prompts: Sequence[str], params: DecodeParams, *,
                 stream: ReplyStream | None = None) -> list[Generation]:
        """One continuation per raw text prompt (reported to ``stream`` while it generates)."""
        ...

    def context_window(self, model: str) -> int | None:
        """Positions the model attends to (prompt plus completion); None when unknown."""
        ...

    def prompt_tokens(self, model: str, prompts: Sequence[list[Message]] | Sequence[str]) -> list[int]:
        """Tokens of each prompt as generation sees it (chat template applied to chat prompts)."""
        ...

    def decode(self, model: str, ids: list[int]) -> str:
        """Text of a token-id prompt; ValueError for ids outside the vocabulary."""
        ...

    def add_adapter(self, model: str, adapter_dir: Path) -> None:
        """Make a trained adapter servable as ``model``."""
        ...


class LocalBackend:
    """A base causal LM (``base_id``) and named LoRA adapters sharing its weights."""

    def __init__(self, base_id: str, base_dir: str | Path, adapters: Mapping[str, str | Path] | None = None,
                 *, batch_size: int = 16, device: str | None = None, torch_threads: int | None = None) -> None:

        self.base_id = base_id
        self._base_dir = Path(base_dir)
        self.batch_size = batch_size
        self._lock = threading.RLock()
        self._created = int(time.time())
        self._model, self.tokenizer = inference.load_model(self._base_dir, device=device, torch_threads=torch_threads)
        self._adapters: dict[str, str] = {}  # model id -> PEFT adapter name
        self._adapter_created: dict[str, int] = {}
        # The served ids have their own lock: /health and /v1/models never wait for a generation.
        self._registry = threading.Lock()
        config = getattr(self._model, "config", None)
        self._window = getattr(config, "max_position_embeddings", None)
        for name, path in (adapters or {}).items():
            self.add_adapter(name, Path(path))

    def models(self) -> list[ModelInfo]:
        """The base (fine-tunable) and every loaded adapter (never waits for a generation)."""
        with self._registry:
            entries = [ModelInfo(self.base_id, self._created, "local", fine_tunable=True)]
            entries += [ModelInfo(name, self._adapter_created[name], "local")
                        for name in self._adapters]
        return entries

    def base_dir(self, model: str) -> Path:
        """The base model's directory; KeyError for any other id."""
        if model != self.base_id:
            raise KeyError(model)
        return self._base_dir

    def count_tokens(self, model: str, messages: list[Message]) -> int:
        """Exact tokens of a conversation under the base tokenizer's chat template."""

        with self._lock:  # the tokenizer is shared with generation
            return len(chat_template_ids(self.tokenizer, messages))

    def context_window(self, model: str) -> int | None:
        """The base model's ``max_position_embeddings`` (adapters share it)."""
        return self._window

    def prompt_tokens(self, model: str, prompts: Sequence[list[Message]] | Sequence[str]) -> list[int]:
        """Prompt lengths exactly as generation encodes them."""

        with self._lock:
            if all(isinstance(p, str) for p in prompts):
                return [len(ids) for ids in self.tokenizer(list(prompts))["input_ids"]]
            return [len(ids) for ids in render_prompts(self.tokenizer, cast(Sequence[list[Message]], prompts))]

    def decode(self, model: str, ids: list[int]) -> str:
        """A token-id prompt as text (special tokens kept)."""
        size = len(self.tokenizer)
        if bad := [i for i in ids if not 0 <= i < size]:
            raise ValueError(f"token id {bad[0]} is outside the vocabulary (0 to {size - 1})")
        with self._lock:
            return self.tokenizer.decode(ids)

    def add_adapter(self, model: str, adapter_dir: Path) -> None:
        """Load an adapter onto the shared PeftModel under a new PEFT adapter name."""
        from peft import PeftModel

        with self._lock:
            if model in self._adapters or model == self.base_id:
                raise ValueError(f"model id {model!r} is already served")
            adapter_name = f"adapter_{len(self._adapters)}"  # PEFT names may not contain '.'
            if isinstance(self._model, PeftModel):
                self._model.load_adapter(str(adapter_dir), adapter_name=adapter_name)
            else:
                self._model = PeftModel.from_pretrained(self._model, str(adapter_dir),
                                                        adapter_name=adapter_name)
            self._model.eval()
            with self._registry:
                self._adapters[model] = adapter_name
                self._adapter_created[model] = int(time.time())

    def _run(self, model: str, generate):
        """Call ``generate(model_object)`` with ``model``'s adapter active, under the lock."""
        from contextlib import nullcontext

        with self._lock:
            if model == self.base_id:
                disable = getattr(self._model, "disable_adapter", None)
                with disable() if disable and self._adapters else nullcontext():
                    return generate(self._model)
            self._model.set_adapter(self._adapters[model])
            return generate(self._model)

    def chat(self, model: str, prompts: Sequence[list[Message]], params: DecodeParams, *,
             stream: ReplyStream | None = None) -> list[Generation]:
        """Batched chat generation with ``model``'s adapter active."""
        return self._run(model, lambda m: inference.generate_batch(
            m, self.tokenizer, prompts, params, batch_size=self.batch_size,
            on_step=step_reporter(m, self.tokenizer, stream, params, strip=True) if stream else None))

    def complete(self, model: str, prompts: Sequence[str], params: DecodeParams, *,
                 stream: ReplyStream | None = None) -> list[Generation]:
        """Raw-text continuation with ``model``'s adapter active."""
        return self._run(model, lambda m: complete_texts(
            m, self.tokenizer, prompts, params,
            on_step=step_reporter(m, self.tokenizer, stream, params, strip=False) if stream else None))


def step_reporter(model: Any, tokenizer: Any, stream: ReplyStream, params: DecodeParams, *,
                  strip: bool) -> Callable[[list[int], list[int]], bool]:
    """A decoding-step hook that decodes each prompt's tokens so far, reports its settled text to
    ``stream`` and ends generation once ``stream`` is cancelled (checked after every step)."""

    stops = set(stop_token_ids(model, tokenizer))
    tokens: dict[int, list[int]] = {}
    finished: set[int] = set()

    def on_step(indices: list[int], new: list[int]) -> bool:
        for index, token in zip(indices, new, strict=True):
            if index in finished:
                continue  # ``generate`` keeps stepping finished rows
            row = tokens.setdefault(index, [])
            row.append(token)
            if token in stops:
                finished.add(index)
            text = tokenizer.decode(row, skip_special_tokens=True)
            stream.text(index, settled(text, params.stop, strip=strip))
        return not stream.cancelled()

    return on_step


def complete_texts(model: Any, tokenizer: Any, prompts: Sequence[str], params: DecodeParams, *,
                   batch_size: int | None = None,
                   on_step: Callable[[list[int], list[int]], bool] | None = None) -> list[Generation]:
    """Continue raw text prompts (no chat template) through the runner's decode loop.

    Generation stops on every stop id of the model's generation config and the chat template's
    end-of-turn token (as chat replies do); an out-of-memory error halves the batch.
    """

    if not prompts:
        return []
    encoded = [list(ids) for ids in tokenizer(list(prompts))["input_ids"]]
    return generate_encoded(model, tokenizer, encoded, params, batch_size=batch_size or len(encoded),
                            share_prefix=False, strip=False, what="text completion", on_step=on_step)

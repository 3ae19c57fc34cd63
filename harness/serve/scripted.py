"""A model-free backend and trainer, for exercising HTTP clients against the real server.

:class:`ScriptedBackend` answers every prompt from a function and counts tokens by
whitespace; :func:`instant_trainer` "trains" by writing an adapter marker and reporting a
falling loss. Retry logic, data synthesis and job bookkeeping can be tested this way in
milliseconds; the local LoRA trainer and :class:`~harness.serve.backend.LocalBackend` are
what ``ft-harness serve`` uses.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.data.records import Message
from harness.jsonio import strict_dumps
from harness.protocol import DecodeParams, Generation, TrainingSummary
from harness.serve.backend import ModelInfo, ReplyStream

Reply = Callable[[str, list[Message], DecodeParams], str]


def echo_reply(model: str, messages: list[Message], params: DecodeParams) -> str:
    """``model: last user message`` (so a test can tell which model answered)."""
    last = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
    return f"{model}: {last}"


class ScriptedBackend:
    """Serves ``base_id`` and any added adapters by calling ``reply``."""

    def __init__(self, base_id: str = "scripted", reply: Reply = echo_reply, *,
                 base_dir: Path | None = None, context_window: int | None = None) -> None:
        self.base_id = base_id
        self.window = context_window
        self.reply = reply
        self._base_dir = base_dir or Path(".")
        self._adapters: dict[str, Path] = {}
        self._created = int(time.time())
        self._lock = threading.Lock()
        self.calls: list[tuple[str, int]] = []

    def models(self) -> list[ModelInfo]:
        """The base and the adapters added so far."""
        with self._lock:
            return [ModelInfo(self.base_id, self._created, "local", fine_tunable=True)] + [
                ModelInfo(name, self._created, "local") for name in self._adapters]

    def base_dir(self, model: str) -> Path:
        """The directory given at construction; KeyError for any other id."""
        if model != self.base_id:
            raise KeyError(model)
        return self._base_dir

    def count_tokens(self, model: str, messages: list[Message]) -> int:
        """Whitespace words plus one per message."""
        return sum(len(str(m.get("content", "")).split()) + 1 for m in messages)

    def context_window(self, model: str) -> int | None:
        """The window given at construction (None: no limit)."""
        return self.window

    def prompt_tokens(self, model: str, prompts: Sequence[list[Message]] | Sequence[str]) -> list[int]:
        """:meth:`count_tokens` of each prompt; a text prompt counts as one user message."""
        return [self.count_tokens(model, [{"role": "user", "content": p}] if isinstance(p, str) else p)
                for p in prompts]

    def decode(self, model: str, ids: list[int]) -> str:
        """Token ids written out, space-separated (``[1, 2]`` → ``"1 2"``)."""
        return " ".join(str(i) for i in ids)

    def add_adapter(self, model: str, adapter_dir: Path) -> None:
        """Serve ``model`` from now on (nothing is loaded)."""
        with self._lock:
            self._adapters[model] = adapter_dir

    def _generate(self, model: str, prompt: list[Message], params: DecodeParams) -> Generation:
        words = self.reply(model, prompt, params).split(" ")
        text = " ".join(words[: params.max_new_tokens])
        for marker in params.stop:
            if marker and marker in text:
                text = text[: text.index(marker)]
        return Generation(text, self.count_tokens(model, prompt), min(len(words), params.max_new_tokens))

    def chat(self, model: str, prompts: Sequence[list[Message]], params: DecodeParams, *,
             stream: ReplyStream | None = None) -> list[Generation]:
        """``reply`` for each prompt, cut at max tokens and stop sequences; streamed word by word."""
        self.calls.append((model, len(prompts)))
        generations = [self._generate(model, p, params) for p in prompts]
        if stream is None:
            return generations
        for index, generation in enumerate(generations):
            words = generation.text.split(" ")
            for k in range(1, len(words) + 1):
                if stream.cancelled():
                    break
                stream.text(index, " ".join(words[:k]))
        return generations

    def complete(self, model: str, prompts: Sequence[str], params: DecodeParams, *,
                 stream: ReplyStream | None = None) -> list[Generation]:
        """Each text prompt answered as a one-message chat."""
        return self.chat(model, [[{"role": "user", "content": p}] for p in prompts], params, stream=stream)


def instant_trainer(*, step_delay_s: float = 0.0, fail_with: str | None = None) -> Callable[..., TrainingSummary]:
    """A stand-in for ``train_lora``: logs one falling loss per step, writes a marker adapter."""

    def train(base_dir: Path, train, validation, params: Mapping[str, Any], out_dir: Path, *,
              seed: int = 0, on_log: Callable[[dict[str, Any]], None] | None = None) -> TrainingSummary:
        """Log a falling loss per step (and eval loss per epoch), write a marker adapter."""
        steps_per_epoch = max(1, -(-len(train) // int(params["batch_size"])))
        history = []
        step = 0
        for epoch in range(int(params["n_epochs"])):
            for _ in range(steps_per_epoch):
                step += 1
                if fail_with and step == 2:
                    raise RuntimeError(fail_with)
                time.sleep(step_delay_s)
                entry = {"step": step, "epoch": epoch + 1.0, "loss": 2.0 / step}
                history.append(entry)
                if on_log:
                    on_log(entry)
            if validation is not None:
                entry = {"step": step, "epoch": epoch + 1.0, "eval_loss": 2.5 / step}
                history.append(entry)
                if on_log:
                    on_log(entry)
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "adapter_config.json").write_text(strict_dumps({"seed": seed, **params}))
        return TrainingSummary(hyperparameters=dict(params), runtime_s=0.0, trainable_params=1,
                               total_params=1, train_loss=2.0 / step, log_history=history,
                               eval_loss=2.5 / step if validation is not None else None)

    return train

"""Chat completions against OpenAI-compatible endpoints, on the shared HTTP layer
(:mod:`harness.backends.http`: configuration, retries, concurrency, redaction)."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from harness.backends.http import (
    ClientConfig,
    RemoteCallError,
    call_endpoint,
    make_client,
    map_concurrently,
)
from harness.data.records import Message
from harness.protocol import DecodeParams, Generation
from harness.text import cut_at_stop


def chat_request(model: str, messages: list[Message], params: DecodeParams, *,
                 max_tokens_field: str = "max_tokens",
                 extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Keyword arguments for ``chat.completions.create`` from harness decoding params."""
    request: dict[str, Any] = {
        "model": model,
        "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
        "temperature": params.temperature,
        "top_p": params.top_p,
        "seed": params.seed,
        max_tokens_field: params.max_new_tokens,
        "n": 1,
    }
    if params.stop:
        request["stop"] = list(params.stop)[:4]  # the API's limit; the rest are applied here
    if extra:
        request.update(extra)
    return request


class ChatGenerator:
    """Scores prompts through ``chat.completions.create`` with retries and bounded concurrency."""

    def __init__(self, config: ClientConfig, model: str, *, extra_body: Mapping[str, Any] | None = None,
                 client: Any = None) -> None:
        self.config = config
        self.model = model
        self.extra_body = dict(extra_body or {})
        self._client = client
        self._lock = threading.Lock()

    @property
    def client(self):
        """The SDK client, built on first use."""
        with self._lock:
            if self._client is None:
                self._client = make_client(self.config)
            return self._client

    def generate_one(self, messages: list[Message], params: DecodeParams) -> Generation:
        """One chat completion → :class:`Generation` with usage and latency."""
        __tracebackhide__ = True
        request = chat_request(self.model, messages, params,
                               max_tokens_field=self.config.max_tokens_field,
                               extra=self.extra_body)
        client = self.client
        timing: dict[str, float] = {}

        def call():
            began = time.perf_counter()
            response = client.chat.completions.create(**request)
            timing["latency"] = time.perf_counter() - began
            return response

        response = call_endpoint(self.config, call, what=f"chat completion ({self.model})")
        if not response.choices:
            raise RemoteCallError(f"chat completion ({self.model}) at {self.config.public_base_url} "
                                  "returned no choices")
        text = response.choices[0].message.content or ""
        usage = response.usage
        return Generation(
            text=cut_at_stop(text, params.stop).strip(),
            prompt_tokens=int(usage.prompt_tokens) if usage else 0,
            completion_tokens=int(usage.completion_tokens) if usage else 0,
            latency_s=timing.get("latency", 0.0),
        )

    def generate(self, prompts: Sequence[list[Message]], params: DecodeParams) -> list[Generation]:
        """One generation per prompt, ``config.concurrency`` requests in flight at most."""
        __tracebackhide__ = True
        return map_concurrently(lambda messages: self.generate_one(messages, params), list(prompts),
                                self.config.concurrency)

"""``stream=True``: replies sent as OpenAI's chunks over server-sent events while they generate.

Generation runs on its own thread and reports each choice's text so far to a
:class:`ReplyFeed` after every decoding step; the response sends the new text of each step as a
chunk, then a closing chunk per choice with the finish reason, the usage chunk when
``stream_options.include_usage`` is set, and ``data: [DONE]``. When the client goes away the
response is cancelled, the feed is cancelled with it, and generation stops after the step in
progress, which frees the backend for the next request.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import anyio
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from harness.jsonio import strict_dumps
from harness.protocol import Generation
from harness.text import cut_at_stop

log = logging.getLogger(__name__)


def settled(text: str, stop: Sequence[str], *, strip: bool) -> str:
    """The part of a growing reply that later tokens cannot change.

    A stop sequence found whole before any tail that may still become one cuts the reply there;
    otherwise the text goes up to that tail, without a trailing partial character (``\ufffd``)
    or (``strip``: chat replies, which are trimmed) trailing whitespace. ``strip`` also drops
    leading whitespace, as the finished reply does.
    """
    if strip:
        text = text.lstrip()
    longest = max((len(marker) for marker in stop if marker), default=0)
    open_from = next((i for i in range(max(0, len(text) - longest + 1), len(text))
                      if any(len(m) > len(text) - i and m.startswith(text[i:]) for m in stop if m)),
                     len(text))
    cut = cut_at_stop(text, stop)
    if len(cut) < len(text) and len(cut) < open_from:
        return cut.rstrip() if strip else cut
    text = text[:open_from].rstrip("\ufffd")
    return text.rstrip() if strip else text


class ReplyFeed:
    """Between the generation thread (``text``, ``cancelled``) and the streamed response (``next``)."""

    def __init__(self, choices: int) -> None:
        self._events: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self._seen = [""] * choices
        self._stop = threading.Event()

    def text(self, index: int, text: str) -> None:
        """Choice ``index``'s settled text so far; what is new goes out as one event."""
        seen = self._seen[index]
        if len(text) > len(seen) and text.startswith(seen):
            self._seen[index] = text
            self._events.put(("delta", index, text[len(seen):]))

    def cancelled(self) -> bool:
        """Whether the client has gone (generation should stop after this step)."""
        return self._stop.is_set()

    def cancel(self) -> None:
        """Stop the generation at its next step and wake a reader waiting on :meth:`next`."""
        self._stop.set()
        self._events.put(("cancelled",))

    def run(self, generate: Callable[[], list[Generation]]) -> None:
        """Call ``generate`` (on the generation thread); its result or error is the last event."""
        try:
            self._events.put(("done", generate()))
        except Exception as exc:  # handed to the response, which reports it
            self._events.put(("error", exc))

    def next(self) -> tuple[Any, ...]:
        """The next event: ``("delta", index, text)``, ``("done", generations)``, ``("error", exc)``
        or ``("cancelled",)`` (blocks)."""
        return self._events.get()

    def start(self, generate: Callable[[], list[Generation]]) -> tuple[Any, ...]:
        """Start generating on a daemon thread; the first event (raised if it is an error)."""
        threading.Thread(target=self.run, args=(generate,), name="ft-serve-stream", daemon=True).start()
        first = self.next()
        if first[0] == "error":
            raise first[1]
        return first


class CancellingStream(StreamingResponse):
    """A streamed response that always watches for the client's disconnect and then cancels
    the body (starlette does so only below ASGI spec 2.4)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with anyio.create_task_group() as group:

            async def stream() -> None:
                await self.stream_response(send)
                group.cancel_scope.cancel()

            group.start_soon(stream)
            await self.listen_for_disconnect(receive)
            group.cancel_scope.cancel()


Chunker = Callable[[list[Generation]], list[dict[str, Any]]]


def live_stream(feed: ReplyFeed, first: tuple[Any, ...], opening: list[dict[str, Any]],
                delta: Callable[[int, str], dict[str, Any]], closing: Chunker) -> StreamingResponse:
    """The response: ``opening`` chunks, one ``delta`` chunk per new text, ``closing`` chunks made
    from the finished generations (the rest of each reply, finish reasons, usage), ``[DONE]``."""

    async def body() -> AsyncIterator[str]:
        sent: dict[int, str] = {}
        try:
            for chunk in opening:
                yield _event(chunk)
            event = first
            while event[0] == "delta":
                _, index, text = event
                sent[index] = sent.get(index, "") + text
                yield _event(delta(index, text))
                event = await anyio.to_thread.run_sync(feed.next, abandon_on_cancel=True)
            if event[0] == "error":
                log.error("generation failed mid-stream: %s", event[1])
                return
            if event[0] == "done":
                generations = event[1]
                for index, generation in enumerate(generations):
                    so_far = sent.get(index, "")
                    if generation.text.startswith(so_far) and len(generation.text) > len(so_far):
                        yield _event(delta(index, generation.text[len(so_far):]))
                for chunk in closing(generations):
                    yield _event(chunk)
                yield "data: [DONE]\n\n"
        finally:
            feed.cancel()

    return CancellingStream(body(), media_type="text/event-stream",
                            headers={"cache-control": "no-cache", "x-accel-buffering": "no"})


def _event(chunk: dict[str, Any]) -> str:
    return f"data: {strict_dumps(chunk, separators=(',', ':'))}\n\n"


def chat_stream(feed: ReplyFeed, first: tuple[Any, ...], head: dict[str, Any], choices: int,
                reasons: Callable[[list[Generation]], list[str]],
                usage: Callable[[list[Generation]], dict[str, int]], include_usage: bool) -> StreamingResponse:
    """``chat.completion.chunk`` objects: each choice's role, its content as generated, finish reasons."""
    head = {**head, "object": "chat.completion.chunk"}
    extra = {"usage": None} if include_usage else {}

    def chunk(index: int, delta: dict[str, Any], reason: str | None = None) -> dict[str, Any]:
        return {**head, **extra, "choices": [{"index": index, "delta": delta, "logprobs": None,
                                              "finish_reason": reason}]}

    def closing(generations: list[Generation]) -> list[dict[str, Any]]:
        chunks = [chunk(i, {}, reason) for i, reason in enumerate(reasons(generations))]
        return chunks + ([{**head, "choices": [], "usage": usage(generations)}] if include_usage else [])

    opening = [chunk(i, {"role": "assistant", "content": "", "refusal": None}) for i in range(choices)]
    return live_stream(feed, first, opening, lambda i, text: chunk(i, {"content": text}), closing)


def completion_stream(feed: ReplyFeed, first: tuple[Any, ...], head: dict[str, Any],
                      reasons: Callable[[list[Generation]], list[str]],
                      usage: Callable[[list[Generation]], dict[str, int]],
                      include_usage: bool) -> StreamingResponse:
    """``text_completion`` chunks: each choice's text as generated, then the finish reasons."""
    head = {**head, "object": "text_completion"}
    extra = {"usage": None} if include_usage else {}

    def chunk(index: int, text: str, reason: str | None = None) -> dict[str, Any]:
        return {**head, **extra, "choices": [{"index": index, "text": text, "logprobs": None,
                                              "finish_reason": reason}]}

    def closing(generations: list[Generation]) -> list[dict[str, Any]]:
        chunks = [chunk(i, "", reason) for i, reason in enumerate(reasons(generations))]
        return chunks + ([{**head, "choices": [], "usage": usage(generations)}] if include_usage else [])

    return live_stream(feed, first, [], chunk, closing)

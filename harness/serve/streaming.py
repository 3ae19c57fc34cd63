"""``stream=True``: finished generations sent as OpenAI's chunks over server-sent events.

The backend generates a whole reply first; the reply then goes out as one chunk per word
(each with its following whitespace), a closing chunk with the finish reason, the usage
chunk when ``stream_options.include_usage`` is set, and ``data: [DONE]``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from fastapi.responses import StreamingResponse

from harness.jsonio import strict_dumps

_WORD = re.compile(r"\s*\S+\s*|\s+")


def pieces(text: str) -> list[str]:
    """``text`` split into words with their surrounding whitespace; ``"".join`` gives it back."""
    return _WORD.findall(text)


def event_stream(chunks: Iterable[dict[str, Any]]) -> StreamingResponse:
    """Each chunk as one ``data:`` event, then ``data: [DONE]``."""

    def body() -> Iterator[str]:
        for chunk in chunks:
            yield f"data: {strict_dumps(chunk, separators=(',', ':'))}\n\n"
        yield "data: [DONE]\n\n"

    return StreamingResponse(body(), media_type="text/event-stream",
                             headers={"cache-control": "no-cache", "x-accel-buffering": "no"})


def chat_chunks(head: dict[str, Any], texts: list[str], reasons: list[str],
                usage: dict[str, int] | None, include_usage: bool) -> Iterator[dict[str, Any]]:
    """``chat.completion.chunk`` objects for every choice: role, content pieces, finish reason."""
    head = {**head, "object": "chat.completion.chunk"}
    extra = {"usage": None} if include_usage else {}

    def chunk(index: int, delta: dict[str, Any], reason: str | None = None) -> dict[str, Any]:
        return {**head, **extra, "choices": [{"index": index, "delta": delta, "logprobs": None,
                                              "finish_reason": reason}]}

    for index, (text, reason) in enumerate(zip(texts, reasons, strict=True)):
        yield chunk(index, {"role": "assistant", "content": "", "refusal": None})
        for piece in pieces(text):
            yield chunk(index, {"content": piece})
        yield chunk(index, {}, reason)
    if include_usage:
        yield {**head, "choices": [], "usage": usage}


def completion_chunks(head: dict[str, Any], texts: list[str], reasons: list[str],
                      usage: dict[str, int] | None, include_usage: bool) -> Iterator[dict[str, Any]]:
    """``text_completion`` chunks for every choice: text pieces, then the finish reason."""
    head = {**head, "object": "text_completion"}
    extra = {"usage": None} if include_usage else {}

    def chunk(index: int, text: str, reason: str | None = None) -> dict[str, Any]:
        return {**head, **extra, "choices": [{"index": index, "text": text, "logprobs": None,
                                              "finish_reason": reason}]}

    for index, (text, reason) in enumerate(zip(texts, reasons, strict=True)):
        for piece in pieces(text):
            yield chunk(index, piece)
        yield chunk(index, "", reason)
    if include_usage:
        yield {**head, "choices": [], "usage": usage}

"""``POST /v1/chat/completions`` and ``POST /v1/completions``, plain JSON or streamed."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from harness.protocol import Generation
from harness.serve.deps import Backend, Settings
from harness.serve.errors import bad_request, unsupported
from harness.serve.records import now
from harness.serve.routes.models import require_model
from harness.serve.sampling import decode_params, finish_reason, fit_context, usage
from harness.serve.schemas import ChatCompletionRequest, ChatMessage, CompletionRequest
from harness.serve.streaming import ReplyFeed, chat_stream, completion_stream

router = APIRouter()
FINGERPRINT = "fp_ft_harness"


def _text_of(message: ChatMessage, index: int) -> str:
    if message.content is None:
        return ""
    if isinstance(message.content, str):
        return message.content
    texts = []
    for j, part in enumerate(message.content):
        if part.type != "text" or part.text is None:
            raise unsupported(f"Content part type {part.type!r} is not supported by this server.",
                              param=f"messages[{index}].content[{j}]")
        texts.append(part.text)
    return "".join(texts)


def _include_usage(body: ChatCompletionRequest | CompletionRequest) -> bool:
    return bool(body.stream_options and body.stream_options.include_usage)


@router.post("/v1/chat/completions", response_model=None)
def chat_completions(body: ChatCompletionRequest, backend: Backend,
                     settings: Settings) -> dict[str, Any] | StreamingResponse:
    """``POST /v1/chat/completions`` with usage, n, stop, temperature, max_tokens and stream."""
    require_model(backend, body.model)
    if body.tools:
        raise unsupported("Tool calling is not supported by this server.", param="tools")
    if body.response_format and body.response_format.get("type") not in (None, "text"):
        raise unsupported("Only response_format type 'text' is supported by this server.",
                          param="response_format")
    requested = body.max_completion_tokens or body.max_tokens
    params = decode_params(body, requested, settings)
    messages = [{"role": "system" if m.role == "developer" else m.role, "content": _text_of(m, i)}
                for i, m in enumerate(body.messages)]
    params = fit_context(backend, body.model, [messages], params, explicit_max=requested is not None,
                         param="messages")
    head = {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "created": now(), "model": body.model,
            "system_fingerprint": FINGERPRINT}
    if body.stream:
        feed = ReplyFeed(body.n)
        first = feed.start(lambda: backend.chat(body.model, [messages] * body.n, params, stream=feed))
        return chat_stream(feed, first, head, body.n, lambda gs: [finish_reason(g, params) for g in gs],
                           lambda gs: usage(gs, body.n), _include_usage(body))
    generations = backend.chat(body.model, [messages] * body.n, params)
    reasons = [finish_reason(g, params) for g in generations]
    return {**head, "object": "chat.completion",
            "choices": [{"index": i, "finish_reason": reason, "logprobs": None,
                         "message": {"role": "assistant", "content": g.text, "refusal": None}}
                        for i, (g, reason) in enumerate(zip(generations, reasons, strict=True))],
            "usage": usage(generations, body.n)}


def _prompt_texts(backend: Any, body: CompletionRequest) -> list[str]:
    """The prompts as text; token-id prompts decoded with the model's tokenizer."""
    if isinstance(body.prompt, str):
        return [body.prompt]
    texts = []
    for index, item in enumerate(body.prompt):
        if isinstance(item, str):
            texts.append(item)
            continue
        decode = getattr(backend, "decode", None)
        if decode is None:
            raise unsupported("Token-id prompts are not supported by this backend.", param="prompt")
        try:
            texts.append(decode(body.model, list(item)))
        except ValueError as exc:
            raise bad_request(f"Invalid value for 'prompt[{index}]': {exc}.", param="prompt",
                              code="invalid_value") from None
    return texts


@router.post("/v1/completions", response_model=None)
def completions(body: CompletionRequest, backend: Backend,
                settings: Settings) -> dict[str, Any] | StreamingResponse:
    """``POST /v1/completions`` for text or token-id prompts (one or a list)."""
    require_model(backend, body.model)
    if body.echo or body.suffix or (body.best_of or 1) > 1:
        raise unsupported("echo, suffix and best_of are not supported by this server.",
                          param="echo" if body.echo else "suffix" if body.suffix else "best_of")
    params = decode_params(body, body.max_tokens, settings)
    prompts = _prompt_texts(backend, body)
    params = fit_context(backend, body.model, prompts, params,
                         explicit_max=body.max_tokens is not None, param="prompt")
    expanded = [p for p in prompts for _ in range(body.n)]
    head = {"id": f"cmpl-{uuid.uuid4().hex[:24]}", "created": now(), "model": body.model,
            "system_fingerprint": FINGERPRINT}
    if body.stream:
        feed = ReplyFeed(len(expanded))
        first = feed.start(lambda: backend.complete(body.model, expanded, params, stream=feed))
        return completion_stream(feed, first, head, lambda gs: [finish_reason(g, params) for g in gs],
                                 lambda gs: usage(gs, body.n), _include_usage(body))
    generations: list[Generation] = backend.complete(body.model, expanded, params)
    reasons = [finish_reason(g, params) for g in generations]
    return {**head, "object": "text_completion",
            "choices": [{"index": i, "text": g.text, "logprobs": None, "finish_reason": reason}
                        for i, (g, reason) in enumerate(zip(generations, reasons, strict=True))],
            "usage": usage(generations, body.n)}

"""From a request body to decoding settings: token limits, stop sequences, the context window."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from harness.protocol import DecodeParams, Generation
from harness.serve.backend import ModelBackend
from harness.serve.errors import bad_request, context_length_exceeded, unsupported
from harness.serve.settings import ServerSettings


def stops(stop: str | list[str] | None) -> tuple[str, ...]:
    """At most 4 non-empty stop sequences (OpenAI's limit)."""
    if stop is None:
        return ()
    chosen = [stop] if isinstance(stop, str) else list(stop)
    if len(chosen) > 4:
        raise bad_request("Invalid 'stop': at most 4 stop sequences are allowed.", param="stop",
                          code="invalid_value")
    return tuple(s for s in chosen if s)


def decode_params(body: Any, max_tokens: int | None, settings: ServerSettings) -> DecodeParams:
    """The decoding settings of a chat or completion request (400 / 422 for what is refused)."""
    if body.logprobs:
        raise unsupported("logprobs are not supported by this server.", param="logprobs")
    if body.stream_options is not None and not body.stream:
        raise bad_request("The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                          param="stream_options", code="invalid_value")
    limit = max_tokens or settings.default_max_tokens
    if limit > settings.max_tokens_limit:
        raise bad_request(f"max_tokens is too large: {limit}. This server supports at most "
                          f"{settings.max_tokens_limit} completion tokens.", param="max_tokens",
                          code="invalid_value")
    return DecodeParams(max_new_tokens=limit,
                        temperature=body.temperature if body.temperature is not None else 1.0,
                        top_p=body.top_p if body.top_p is not None else 1.0,
                        seed=body.seed if body.seed is not None else 0,
                        stop=stops(body.stop))


def fit_context(backend: ModelBackend, model: str, prompts: Sequence[Any], params: DecodeParams, *,
                explicit_max: bool, param: str) -> DecodeParams:
    """Refuse prompts (plus the requested completion) longer than the model's context window.

    Without an explicit ``max_tokens`` the completion is shortened to what still fits, as
    OpenAI does; the check is skipped for backends that know no window.
    """
    window_of = getattr(backend, "context_window", None)
    window = window_of(model) if window_of is not None else None
    if not window:
        return params
    longest = max(backend.prompt_tokens(model, prompts), default=0)
    if longest + (params.max_new_tokens if explicit_max else 1) > window:
        raise context_length_exceeded(window, longest, params.max_new_tokens, param=param)
    return dataclasses.replace(params, max_new_tokens=min(params.max_new_tokens, window - longest))


def finish_reason(generation: Generation, params: DecodeParams) -> str:
    """``length`` when the completion used every allowed token, else ``stop``."""
    return "length" if generation.completion_tokens >= params.max_new_tokens else "stop"


def usage(generations: list[Generation], n: int) -> dict[str, int]:
    """OpenAI's usage: each prompt counted once (not per choice), every completion counted."""
    prompt = sum(g.prompt_tokens for g in generations[::n]) if n else 0
    completion = sum(g.completion_tokens for g in generations)
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}

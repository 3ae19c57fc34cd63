"""One HTTP client layer for remote model endpoints: configuration, retries, concurrency, redaction.

Used by every family that calls a remote OpenAI-compatible API (the OpenAI family, the vLLM engine)
and by any remote scorer. The SDK client is built with ``max_retries=0``: the retry policy is ours
(exponential backoff with jitter, honouring ``Retry-After``) so it is configurable and testable.
Retried: 408, 409, 429, 5xx, timeouts and dropped connections; every other error is final. Each
call has a timeout (``ClientConfig.timeout_s``) and at most ``concurrency`` calls are in flight.
Nothing here ever lets the API key reach a message, a log line or a chained exception: it travels
as a :class:`~harness.secrets.Secret` and is revealed only in :func:`make_client`.
"""

from __future__ import annotations

import email.utils
import logging
import math
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

from harness.errors import HarnessError
from harness.secrets import (
    Secret,
    install_log_redaction,
    redact_text,
    redact_url,
    secret_or_none,
    url_secrets,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")

#: Placeholder key sent to endpoints that need none (local servers, vLLM without --api-key).
NO_KEY = "no-key-configured"


class RemoteCallError(HarnessError):
    """A call to an OpenAI-compatible endpoint failed for good (after any retries)."""

    def __init__(self, message: str, *, status_code: int | None = None, code: str | None = None,
                 retryable: bool = False) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.retryable = retryable


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to wait before retrying a failed call."""

    max_attempts: int = 6
    initial_backoff_s: float = 0.5
    multiplier: float = 2.0
    max_backoff_s: float = 20.0
    jitter: float = 0.5  # share of each backoff drawn at random ("equal jitter" at 0.5)
    max_retry_after_s: float = 60.0  # a longer Retry-After is capped to this

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be between 0 and 1")
        if self.initial_backoff_s < 0 or self.max_backoff_s < 0 or self.multiplier < 1:
            raise ValueError("backoffs must be >= 0 and multiplier >= 1")

    def backoff_s(self, attempt: int, retry_after_s: float | None, rng: random.Random) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based).

        A server's ``Retry-After`` wins (capped at ``max_retry_after_s``); otherwise
        ``min(max, initial × multiplier^(attempt-1))`` with its ``jitter`` share randomised.
        """
        if retry_after_s is not None and math.isfinite(retry_after_s) and retry_after_s >= 0:
            return min(retry_after_s, self.max_retry_after_s)
        ceiling = min(self.max_backoff_s,
                      self.initial_backoff_s * self.multiplier ** min(attempt - 1, 64))
        return ceiling * (1 - self.jitter) + ceiling * self.jitter * rng.random()


@dataclass(frozen=True)
class ClientConfig:
    """Where and how to reach an OpenAI-compatible API.

    The key is a :class:`~harness.secrets.Secret`; a ``base_url`` carrying ``user:password@``
    or a query string is kept whole only as a Secret (``sdk_url``) and ``base_url`` itself holds
    the credential-free URL, so no ``repr``, log line or traceback of a config shows either.
    """

    base_url: str | None = None
    api_key: Secret | None = field(default=None, repr=False)
    timeout_s: float = 60.0
    concurrency: int = 4
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    max_tokens_field: str = "max_tokens"  # or "max_completion_tokens" (newer OpenAI models)
    sdk_url: Secret | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        if self.max_tokens_field not in ("max_tokens", "max_completion_tokens"):
            raise ValueError("max_tokens_field must be 'max_tokens' or 'max_completion_tokens'")
        object.__setattr__(self, "api_key", secret_or_none(self.api_key))
        url = self.base_url
        parts = urlsplit(url) if url else None
        if url and parts and (parts.username or parts.password or parts.query or parts.fragment):
            object.__setattr__(self, "sdk_url", Secret(url))
            object.__setattr__(self, "base_url", redact_url(url))

    @classmethod
    def resolve(cls, *, base_url: str | None = None, api_key: str | Secret | None = None,
                api_key_env: str = "OPENAI_API_KEY", env: Mapping[str, str] | None = None,
                **options: Any) -> ClientConfig:
        """Explicit settings first, then ``OPENAI_BASE_URL`` and ``api_key_env`` from the environment."""
        env = os.environ if env is None else env
        return cls(base_url=base_url or env.get("OPENAI_BASE_URL") or None,
                   api_key=secret_or_none(api_key or env.get(api_key_env)), **options)

    @property
    def public_base_url(self) -> str:
        """The base URL without credentials (OpenAI's default when none is set)."""
        return redact_url(self.base_url or "https://api.openai.com/v1")

    def secrets(self) -> tuple[Secret, ...]:
        """Values to scrub from any text this configuration's calls produce."""
        found = [self.api_key] if self.api_key else []
        if self.sdk_url:
            found += [self.sdk_url, *url_secrets(self.sdk_url.reveal())]
        return tuple(found)


def make_client(config: ClientConfig):
    """An ``openai.OpenAI`` client with the SDK's own retries off (``max_retries=0``).

    The only place the key and a credentialed URL are revealed; log redaction is installed
    first so the SDK's and httpx's log lines never carry them.
    """
    __tracebackhide__ = True
    import openai

    install_log_redaction()
    if not config.api_key and not config.base_url:
        raise HarnessError("no API key for OpenAI: set OPENAI_API_KEY (or pass api_key / "
                           "--api-key-env), or point base_url at an endpoint that needs none")
    return openai.OpenAI(base_url=config.sdk_url.reveal() if config.sdk_url else config.base_url,
                         api_key=config.api_key.reveal() if config.api_key else NO_KEY,
                         max_retries=0, timeout=config.timeout_s)


def retry_after_seconds(headers: Mapping[str, str] | None, *, now: float | None = None) -> float | None:
    """Seconds a response asks us to wait: ``retry-after-ms``, ``retry-after`` seconds or date."""
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = lowered.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / divisor
        except ValueError:
            continue
        if math.isfinite(seconds) and seconds >= 0:
            return seconds
    value = lowered.get("retry-after")
    if value:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when is not None:
            return max(0.0, when.timestamp() - (time.time() if now is None else now))
    return None


def classify(exc: BaseException) -> tuple[bool, int | None, str | None, float | None]:
    """(retryable, HTTP status, error code, Retry-After seconds) for an SDK exception."""
    import openai

    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        retryable = status in (408, 409, 429) or status >= 500
        return retryable, status, exc.code, retry_after_seconds(dict(exc.response.headers))
    if isinstance(exc, openai.APIConnectionError):  # includes APITimeoutError
        return True, None, None, None
    return False, None, None, None


def _is_api_error(exc: BaseException) -> bool:
    import openai

    return isinstance(exc, openai.APIError)


def _describe(exc: BaseException) -> str:
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return "request timed out"
    if isinstance(exc, openai.APIConnectionError):
        return "connection failed"
    if isinstance(exc, openai.APIStatusError):
        body = exc.body if isinstance(exc.body, dict) else {}
        message = body.get("message") or exc.message
        return f"HTTP {exc.status_code}: {message}"
    return f"{type(exc).__name__}: {exc}"


def call_with_retries(operation: Callable[[], T], policy: RetryPolicy, *, what: str, where: str = "",
                      secrets: Sequence[Secret] = (), sleep: Callable[[float], None] = time.sleep,
                      rng: random.Random | None = None,
                      on_retry: Callable[[int, str, float], None] | None = None) -> T:
    """Run ``operation`` until it succeeds, retrying transient failures per ``policy``.

    Final failures raise :class:`RemoteCallError` naming ``what``, the endpoint ``where``
    (a credential-free URL) and the HTTP status, with secrets scrubbed and the SDK exception
    (which holds the request and its headers) not chained.
    """
    __tracebackhide__ = True
    rng = rng or random.Random()
    at = f" at {redact_url(where)}" if where else ""
    attempt = 0
    while True:
        attempt += 1
        try:
            return operation()
        except Exception as exc:
            if not _is_api_error(exc):
                raise  # a bug or our own error: not the endpoint's doing
            retryable, status, code, retry_after = classify(exc)
            reason = redact_text(_describe(exc), secrets)
        # Raised outside the except block and from None: the SDK exception (whose request
        # carries the Authorization header) is neither the cause nor the context of ours.
        if not retryable or attempt >= policy.max_attempts:
            tried = f" after {attempt} attempts" if retryable else ""
            raise RemoteCallError(f"{what}{at} failed{tried}: {reason}", status_code=status, code=code,
                                  retryable=retryable) from None
        delay = policy.backoff_s(attempt, retry_after, rng)
        log.info("%s%s: %s; retry %d/%d in %.2fs", what, at, reason, attempt, policy.max_attempts - 1,
                 delay)
        if on_retry:
            on_retry(attempt, reason, delay)
        sleep(delay)


def call_endpoint(config: ClientConfig, operation: Callable[[], T], *, what: str,
                  sleep: Callable[[float], None] = time.sleep,
                  on_retry: Callable[[int, str, float], None] | None = None) -> T:
    """:func:`call_with_retries` with ``config``'s retry policy, endpoint and secrets."""
    __tracebackhide__ = True
    return call_with_retries(operation, config.retry, what=what, where=config.public_base_url,
                             secrets=config.secrets(), sleep=sleep, on_retry=on_retry)


def map_concurrently(function: Callable[[T], R], items: Sequence[T], concurrency: int) -> list[R]:
    """``[function(x) for x in items]`` on up to ``concurrency`` threads, results in input order."""
    if concurrency <= 1 or len(items) <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(concurrency, len(items))) as pool:
        futures = [pool.submit(function, item) for item in items]
        try:
            return [future.result() for future in futures]
        except BaseException:
            for future in futures:
                future.cancel()
            raise

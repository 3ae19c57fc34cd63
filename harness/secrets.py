"""Secrets, in one place: the :class:`Secret` wrapper, redaction of text, URLs, values and logs,
and recognition of secret-looking fields (so none reaches a cache key, report or log line).

A credential lives in a :class:`Secret` from the moment it is read (environment, URL) until the
SDK call that needs it (``reveal()``); its ``repr`` and ``str`` are ``***``, so a traceback that
prints locals, a dataclass ``repr`` or an f-string shows nothing. Every Secret's value is also
remembered so that :func:`redact_text` (and the log redaction built on it) scrubs it wherever it
appears, even when it does not look like a key.

Field names are split into words (``openaiApiKey`` → ``openai api key``) so that ordinary fields
such as ``max_new_tokens``, ``pad_token`` or ``tokenizer`` are not mistaken for secrets.
"""

from __future__ import annotations

import hmac
import itertools
import logging
import re
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

REDACTED = "***"
#: Remembered values shorter than this are not scrubbed from arbitrary text (too many false hits).
MIN_REMEMBERED = 8
#: Loggers whose records are redacted by :func:`install_log_redaction`, with their children and
#: numbered forks (openai ≥ 3 logs through ``httpx2`` / ``httpcore2``).
REDACTED_LOGGERS = ("httpx", "httpcore", "openai", "aiohttp", "urllib3", "requests", "harness")

_remembered: set[str] = set()
_remembered_lock = threading.Lock()


class Secret:
    """A credential whose ``repr`` / ``str`` are redacted; ``reveal()`` only at the SDK call."""

    __slots__ = ("_value",)

    def __init__(self, value: str | Secret) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        if not isinstance(value, str):
            raise TypeError(f"a Secret wraps a string, got {type(value).__name__}")
        self._value = value
        remember(value)

    def reveal(self) -> str:
        """The raw value: call this only where the credential is handed to the library using it."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({REDACTED!r})"

    def __str__(self) -> str:
        return REDACTED

    def __format__(self, spec: str) -> str:
        return REDACTED

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode("utf-8"), other._value.encode("utf-8"))

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret:
        return self

    def __reduce__(self):
        raise TypeError("a Secret is never pickled or written anywhere")


def secret_or_none(value: str | Secret | None) -> Secret | None:
    """``value`` as a :class:`Secret`; None (or an empty string) stays None."""
    if value is None or value == "":
        return None
    return value if isinstance(value, Secret) else Secret(value)


def remember(value: str) -> None:
    """Scrub ``value`` from every text :func:`redact_text` sees from now on (long values only)."""
    if isinstance(value, str) and len(value) >= MIN_REMEMBERED:
        with _remembered_lock:
            _remembered.add(value)


# -- text ------------------------------------------------------------------------------------------
_URL_USERINFO = re.compile(r"(?<=://)[^/\s@'\"<>]+@")
_AUTH_SCHEME = re.compile(r"\b(Bearer\s+)[^\s'\",;]+|\b(Basic\s+)[A-Za-z0-9+/]{4,}={0,2}", re.IGNORECASE)
_QUERY_SECRET = re.compile(
    r"([?&](?:api[-_]?key|key|token|access[-_]token|auth|password|secret|sig|signature)=)[^&#\s'\"]+",
    re.IGNORECASE)
_KEY_SHAPED = re.compile(r"\b(?:sk-[A-Za-z0-9_\-*]{6,}|hf_[A-Za-z0-9]{20,}|gh[pousr]_[A-Za-z0-9]{20,})")


def redact_text(text: str, secrets: Iterable[Secret | str | None] = ()) -> str:
    """``text`` with the given and remembered secrets, URL credentials, ``Bearer``/``Basic``
    tokens, secret query parameters and key-shaped strings (``sk-…``, ``hf_…``) replaced by ``***``."""
    text = _URL_USERINFO.sub(f"{REDACTED}@", text)  # first, so a URL keeps its host and path
    text = _AUTH_SCHEME.sub(lambda m: f"{m.group(1) or m.group(2)}{REDACTED}", text)
    text = _QUERY_SECRET.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
    values = {s.reveal() if isinstance(s, Secret) else s for s in secrets}
    with _remembered_lock:
        values |= _remembered
    for value in sorted((v for v in values if v), key=len, reverse=True):
        if value in text:
            text = text.replace(value, REDACTED)
    return _KEY_SHAPED.sub(REDACTED, text)


def redact_url(url: str | None) -> str:
    """``url`` without user:password, query string, fragment or trailing slash (safe to log or hash)."""
    if not url:
        return ""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def url_secrets(url: str | None) -> tuple[Secret, ...]:
    """The secret parts of ``url`` (password, user, query), each as a :class:`Secret`."""
    if not url:
        return ()
    parts = urlsplit(url)
    return tuple(Secret(p) for p in (parts.password, parts.username if parts.password else None,
                                     parts.query) if p)


# -- names and values ------------------------------------------------------------------------------
_WORD_BOUNDARY = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")

# Any one of these words makes a field name a secret.
_SECRET_WORDS = frozenset(
    {"password", "passwd", "passphrase", "secret", "secrets", "authorization", "apikey",
     "credential", "credentials", "bearer", "cookie"}
)
# Adjacent word pairs that name a secret.
_SECRET_PAIRS = frozenset(
    {("api", "key"), ("private", "key"), ("access", "key"), ("secret", "key"),
     ("access", "token"), ("auth", "token"), ("api", "token"), ("refresh", "token"),
     ("hf", "token"), ("bearer", "token"), ("id", "token"), ("session", "token"),
     ("client", "secret")}
)
# Whole field names that are secrets on their own.
_SECRET_NAMES = frozenset({"token", "auth"})

# Values shaped like well-known credentials (OpenAI, Hugging Face, GitHub, bearer headers).
_SECRET_VALUE = re.compile(
    r"^(?:sk-[A-Za-z0-9_-]{16,}|hf_[A-Za-z0-9]{20,}|gh[pousr]_[A-Za-z0-9]{20,}"
    r"|Bearer\s+[A-Za-z0-9._~+/=-]{12,})$"
)


def _words(name: str) -> list[str]:
    return [w.lower() for w in _WORD_BOUNDARY.split(name) if w]


def looks_like_secret_name(name: str) -> bool:
    """True when a field name (``api_key``, ``Authorization``, ``hf-token``) names a secret."""
    words = _words(name)
    if "_".join(words) in _SECRET_NAMES:
        return True
    if any(word in _SECRET_WORDS for word in words):
        return True
    return any(pair in _SECRET_PAIRS for pair in itertools.pairwise(words))


def looks_like_secret_value(value: str) -> bool:
    """True when a string has the shape of a credential (``sk-…``, ``hf_…``, ``Bearer …``)."""
    return bool(_SECRET_VALUE.match(value.strip()))


def redact_value(value: Any) -> Any:
    """``value`` (nested dicts / lists) with secret-named fields, credential-shaped strings and
    :class:`Secret` objects replaced by ``***`` and URL credentials scrubbed from other strings."""
    if isinstance(value, Secret):
        return REDACTED
    if isinstance(value, dict):
        return {key: REDACTED if looks_like_secret_name(str(key)) else redact_value(item)
                for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact_value(item) for item in value)
    if isinstance(value, str):
        return REDACTED if looks_like_secret_value(value) else redact_text(value)
    return value


# -- logs --------------------------------------------------------------------------------------------


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """``record`` with its formatted message and exception text redacted in place."""
    try:
        message = record.getMessage()
    except Exception:  # a malformed record: leave it to logging's own error handling
        return record
    cleaned = redact_text(message)
    if cleaned != message or record.args:
        record.msg, record.args = cleaned, None
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact_text(record.exc_text)
    if record.stack_info:
        record.stack_info = redact_text(record.stack_info)
    return record


_installed = threading.Lock()
_install_state = {"done": False}


def install_log_redaction(loggers: Iterable[str] = REDACTED_LOGGERS) -> None:
    """Redact every record of ``loggers`` and their children (httpx, httpcore, openai, harness…).

    Installed as a log-record factory, so it covers child loggers (``httpcore2.http11``,
    ``openai._base_client``), numbered forks (``httpx2``) and every handler, pytest's captured
    logs included. Idempotent.
    """
    prefixes = tuple(loggers)
    with _installed:
        if _install_state["done"]:
            return
        previous = logging.getLogRecordFactory()

        def factory(name: str, *args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(name, *args, **kwargs)
            if name.partition(".")[0].rstrip("0123456789") in prefixes:
                redact_record(record)
            return record

        logging.setLogRecordFactory(factory)
        _install_state["done"] = True

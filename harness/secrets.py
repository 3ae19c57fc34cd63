"""Recognise values that must never be written to a cache key: API keys, tokens, passwords.

Field names are split into words (``openaiApiKey`` → ``openai api key``) so that ordinary
fields such as ``max_new_tokens``, ``pad_token`` or ``tokenizer`` are not mistaken for secrets.
"""

from __future__ import annotations

import itertools
import re

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

"""Spec options shared by the ``openai`` and ``endpoint`` kinds: client settings, pricing, and the
fingerprint every remotely served candidate has."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from harness.backends.http import ClientConfig, RetryPolicy
from harness.cost import PricingTable
from harness.errors import SpecError

#: the client keys both remote kinds take (declared once: the kind registry and the builders read them)
CLIENT_OPTIONS = ("model", "base_url", "api_key_env", "timeout_s", "concurrency", "max_attempts",
                  "max_tokens_field", "request_options")


def fingerprint_of(base_url: str, model: str, request_options: Mapping[str, Any]) -> str:
    """sha256 of (base URL without credentials, model id, fixed request options)."""
    payload = json.dumps({"base_url": base_url, "model": model, "request": dict(request_options)},
                         sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def client_config_from_options(options: Mapping[str, Any], where: str) -> ClientConfig:
    """A :class:`ClientConfig` from spec options (``base_url``, ``api_key_env``, limits)."""
    try:
        return ClientConfig.resolve(
            base_url=options.get("base_url"),
            api_key_env=str(options.get("api_key_env", "OPENAI_API_KEY")),
            timeout_s=float(options.get("timeout_s", 60.0)),
            concurrency=int(options.get("concurrency", 4)),
            retry=RetryPolicy(max_attempts=int(options.get("max_attempts", 6))),
            max_tokens_field=str(options.get("max_tokens_field", "max_tokens")),
        )
    except (TypeError, ValueError) as exc:
        raise SpecError(f"{where}: {exc}") from None


def pricing_from_spec(pricing: Mapping[str, Any] | None) -> PricingTable:
    """The default table overridden by ``[harness.pricing]`` (``as_of`` + ``models``, or models directly)."""
    table = PricingTable()
    if not pricing:
        return table
    models = pricing.get("models", {k: v for k, v in pricing.items() if k != "as_of"})
    try:
        return table.with_overrides(models, as_of=pricing.get("as_of"))
    except (TypeError, ValueError) as exc:
        raise SpecError(f"harness.pricing: {exc}") from None

"""Any OpenAI-compatible endpoint as a candidate: an already deployed model, no training.

Point it at OpenAI, vLLM, Ollama, llama.cpp or ``ft-harness serve`` with a ``base_url`` and a
model id. Its fingerprint is the credential-free base URL, the model id, the fixed request
options and (when the server lists it) the model's ``/v1/models`` entry, so a redeployed model
with a new ``created`` time is a different candidate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.backends.http import ClientConfig, RemoteCallError, call_endpoint
from harness.backends.openai.client import ChatGenerator
from harness.backends.openai.options import (
    CLIENT_OPTIONS,
    client_config_from_options,
    fingerprint_of,
)
from harness.data.records import Message
from harness.errors import SpecError
from harness.protocol import Candidate, DecodeParams, Generation, TrainingSummary

KIND = "endpoint"


def describe_model(config: ClientConfig, model: str, *, client: Any = None) -> dict[str, Any] | None:
    """The server's ``/v1/models/{model}`` entry (None when the server does not list models)."""
    __tracebackhide__ = True
    generator = ChatGenerator(config, model, client=client)
    try:
        entry = call_endpoint(config, lambda: generator.client.models.retrieve(model),
                              what=f"look up model {model}")
    except RemoteCallError as exc:
        if exc.status_code == 404:
            raise RemoteCallError(f"{config.public_base_url} does not serve model {model!r}",
                                  status_code=404) from None
        if exc.status_code in (405, 501):
            return None
        raise
    return {"id": entry.id, "created": entry.created, "owned_by": entry.owned_by}


@dataclass
class EndpointCandidate(Candidate):
    """A deployed model scored through ``chat.completions``; nothing is trained."""

    name: str
    model: str
    config: ClientConfig
    model_entry: dict[str, Any] | None = None
    request_options: dict[str, Any] = field(default_factory=dict)
    kind: str = KIND
    training: TrainingSummary | None = None
    fingerprint: str = ""

    def __post_init__(self) -> None:
        if not self.fingerprint:
            options = dict(self.request_options)
            if self.model_entry is not None:
                options["__model_entry__"] = self.model_entry
            self.fingerprint = fingerprint_of(self.config.public_base_url, self.model, options)
        self._generator = ChatGenerator(self.config, self.model, extra_body=self.request_options)

    @classmethod
    def connect(cls, name: str, model: str, config: ClientConfig, *, verify: bool = True,
                request_options: Mapping[str, Any] | None = None) -> EndpointCandidate:
        """A candidate for ``model`` at ``config.base_url``; ``verify`` checks the server lists it."""
        entry = describe_model(config, model) if verify else None
        return cls(name, model, config, entry, dict(request_options or {}))

    def priced_model(self) -> str | None:
        """The remote model id, priced per token by the report."""
        return self.model

    def generate(self, prompts: Sequence[list[Message]], params: DecodeParams) -> list[Generation]:
        """One chat completion per prompt, with token usage and latency."""
        return self._generator.generate(prompts, params)


OPTIONS = (*CLIENT_OPTIONS, "verify")


def build(ctx, suite, spec) -> EndpointCandidate:
    """Build the ``kind = "endpoint"`` candidate of a suite (registry entry point)."""
    where = f"{ctx.spec.path}: suites.{suite.name}.candidates.{spec.name}"
    unknown = sorted(set(spec.options) - set(OPTIONS))
    if unknown or spec.params:
        key = unknown[0] if unknown else "params"
        raise SpecError(f"{where}: unknown key {key!r} (an endpoint is not trained; options: "
                        f"{', '.join(sorted(OPTIONS))})")
    if "model" not in spec.options:
        raise SpecError(f"{where}: missing key 'model' (the served model id)")
    config = client_config_from_options(spec.options, where)
    return EndpointCandidate.connect(spec.name, str(spec.options["model"]), config,
                                     verify=bool(spec.options.get("verify", True)),
                                     request_options=spec.options.get("request_options"))

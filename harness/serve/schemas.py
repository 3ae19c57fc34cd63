"""Request bodies of the OpenAI endpoints this server implements (pydantic models).

Unknown top-level fields are accepted and ignored, as most OpenAI-compatible servers do;
fields this server cannot honour are refused with a 422 by the endpoints themselves.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Auto = Literal["auto"]


class ContentPart(BaseModel):
    """One part of a message's content list (only text parts are served)."""

    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    """One chat message; ``developer`` is treated as ``system``."""

    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None


class _Sampling(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str = Field(min_length=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    n: int = Field(1, ge=1, le=16)
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool | None = False
    logprobs: Any = None


class ChatCompletionRequest(_Sampling):
    """Body of ``POST /v1/chat/completions``."""

    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    tools: list[Any] | None = None
    response_format: dict[str, Any] | None = None


class CompletionRequest(_Sampling):
    """Body of ``POST /v1/completions``."""

    prompt: str | list[str]
    echo: bool | None = False
    best_of: int | None = None
    suffix: str | None = None


class Hyperparameters(BaseModel):
    """Supervised fine-tuning hyperparameters (``"auto"`` or a value)."""

    model_config = ConfigDict(extra="forbid")
    n_epochs: Auto | int | None = Field(None, union_mode="left_to_right")
    batch_size: Auto | int | None = Field(None, union_mode="left_to_right")
    learning_rate_multiplier: Auto | float | None = Field(None, union_mode="left_to_right")


class SupervisedMethod(BaseModel):
    """``method.supervised``."""

    model_config = ConfigDict(extra="forbid")
    hyperparameters: Hyperparameters | None = None


class Method(BaseModel):
    """``method``: only ``supervised`` is served (the others get a 422)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["supervised", "dpo", "reinforcement"]
    supervised: SupervisedMethod | None = None
    dpo: dict[str, Any] | None = None
    reinforcement: dict[str, Any] | None = None


class FineTuningJobRequest(BaseModel):
    """Body of ``POST /v1/fine_tuning/jobs``."""

    model_config = ConfigDict(extra="allow")
    model: str = Field(min_length=1)
    training_file: str = Field(min_length=1)
    validation_file: str | None = None
    hyperparameters: Hyperparameters | None = None
    method: Method | None = None
    suffix: str | None = Field(None, max_length=64)
    seed: int | None = Field(None, ge=0, le=2**31 - 1)
    metadata: dict[str, str] | None = None
    integrations: list[Any] | None = None

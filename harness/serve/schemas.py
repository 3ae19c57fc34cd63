"""Request bodies of the OpenAI endpoints this server implements (pydantic models).

Unknown top-level fields are accepted and ignored, as most OpenAI-compatible servers do;
fields this server cannot honour are refused with a 422 by the endpoints themselves.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

Auto = Literal["auto"]
INT64 = 2**63


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


class StreamOptions(BaseModel):
    """``stream_options``: whether a streamed response ends with a usage chunk."""

    model_config = ConfigDict(extra="allow")
    include_usage: StrictBool | None = None


class _Sampling(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str = Field(min_length=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    n: int = Field(1, ge=1, le=16)
    stop: str | list[str] | None = None
    seed: int | None = Field(None, ge=-INT64, le=INT64 - 1)
    stream: StrictBool | None = False
    stream_options: StreamOptions | None = None
    logprobs: Any = None


class ChatCompletionRequest(_Sampling):
    """Body of ``POST /v1/chat/completions``."""

    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    tools: list[Any] | None = None
    response_format: dict[str, Any] | None = None


class CompletionRequest(_Sampling):
    """Body of ``POST /v1/completions``."""

    prompt: str | list[str] | list[list[int]]
    echo: StrictBool | None = False
    best_of: int | None = None
    suffix: str | None = None

    @field_validator("prompt", mode="before")
    @classmethod
    def _prompt_shape(cls, value: Any) -> Any:
        """A string, strings, token ids or lists of token ids; never empty. Ids come out nested."""
        expected = "expected a string, a list of strings, a list of token ids or a list of token-id lists"
        if isinstance(value, str):
            if not value:
                raise ValueError("the prompt is empty; send at least one character")
            return value
        if not isinstance(value, list) or not value:
            raise ValueError(f"{expected}, got {_shown(value)}")
        if all(_is_id(v) for v in value):
            value = [value]
        elif not (all(isinstance(v, str) for v in value) or all(isinstance(v, list) for v in value)):
            raise ValueError(f"{expected}, got {_shown(value)}")
        for index, item in enumerate(value):
            if isinstance(item, list) and not (item and all(_is_id(v) for v in item)):
                raise ValueError(f"prompt[{index}] must be a non-empty list of token ids "
                                 "(integers >= 0)")
            if item == "":
                raise ValueError(f"prompt[{index}] is empty; send at least one character")
        return value


class Hyperparameters(BaseModel):
    """Supervised fine-tuning hyperparameters (``"auto"`` or a value; no coercion of strings or booleans)."""

    model_config = ConfigDict(extra="forbid")
    n_epochs: Auto | int | None = Field(None, union_mode="left_to_right")
    batch_size: Auto | int | None = Field(None, union_mode="left_to_right")
    learning_rate_multiplier: Auto | float | None = Field(None, union_mode="left_to_right")

    @field_validator("n_epochs", "batch_size", mode="before")
    @classmethod
    def _integer_or_auto(cls, value: Any) -> Any:
        if value is None or value == "auto" or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        raise ValueError(f"expected an integer or 'auto', got {_shown(value)}")

    @field_validator("learning_rate_multiplier", mode="before")
    @classmethod
    def _number_or_auto(cls, value: Any) -> Any:
        if value is None or value == "auto" or (isinstance(value, int | float) and not isinstance(value, bool)):
            return value
        raise ValueError(f"expected a number or 'auto', got {_shown(value)}")


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


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _shown(value: Any) -> str:
    """A client's value as JSON, shortened."""
    text = json.dumps(value) if isinstance(value, str | int | float | bool | list | dict) or value is None else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."

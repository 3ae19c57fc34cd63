"""OpenAI-shaped API errors: ``{"error": {message, type, param, code}}`` with matching statuses.

The status decides which exception the official SDK raises: 400 BadRequestError,
401 AuthenticationError, 404 NotFoundError, 422 UnprocessableEntityError (a request valid
for OpenAI that this server does not support, e.g. ``stream``), 429 RateLimitError,
500 InternalServerError.
"""

from __future__ import annotations

from typing import Any


class APIError(Exception):
    """An error the server answers with an OpenAI-shaped JSON body."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The JSON body OpenAI sends for this error."""
        return error_body(self.message, type=self.type, param=self.param, code=self.code)


def error_body(message: str, *, type: str = "invalid_request_error", param: str | None = None,
               code: str | None = None) -> dict[str, Any]:
    """``{"error": {...}}`` exactly as OpenAI shapes it."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def bad_request(message: str, *, param: str | None = None, code: str | None = None) -> APIError:
    """400: the request is malformed or names something unusable."""
    return APIError(400, message, param=param, code=code)


def not_found(message: str, *, param: str | None = None, code: str | None = None) -> APIError:
    """404: no such model, file or job."""
    return APIError(404, message, param=param, code=code)


def unsupported(message: str, *, param: str | None = None) -> APIError:
    """422: a valid OpenAI request that this server cannot process."""
    return APIError(422, message, param=param, code="unsupported_parameter")


def model_not_found(model: str, param: str = "model") -> APIError:
    """404 for an unknown model id, worded as OpenAI does."""
    return not_found(f"The model `{model}` does not exist or you do not have access to it.",
                     param=param, code="model_not_found")


def file_too_large(limit: int) -> APIError:
    """400 for an upload over the server's size limit."""
    return bad_request(f"File is too large: this server accepts uploads of at most {limit} bytes.",
                       param="file", code="file_too_large")


def context_length_exceeded(window: int, prompt_tokens: int, completion_tokens: int, *,
                            param: str) -> APIError:
    """400 ``context_length_exceeded``, worded as OpenAI does."""
    what = "messages" if param == "messages" else "prompt"
    return bad_request(
        f"This model's maximum context length is {window} tokens. However, you requested "
        f"{prompt_tokens + completion_tokens} tokens ({prompt_tokens} in the {what}, "
        f"{completion_tokens} in the completion). Please reduce the length of the {what} or "
        "completion.", param=param, code="context_length_exceeded")

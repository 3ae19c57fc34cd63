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

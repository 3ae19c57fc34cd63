"""Exception handlers: every error leaves the server as OpenAI's ``{"error": {...}}`` body."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from harness.serve.errors import APIError, bad_request, error_body

log = logging.getLogger(__name__)
# pydantic labels the branches of a union in an error's location; they are not parameter names
_BRANCH_LABELS = {"str", "int", "float", "bool", "none", "dict", "list"}


def param_name(loc: tuple[Any, ...]) -> str:
    """``messages[0].role`` from pydantic's ``("body", "messages", 0, "role")``."""
    name = ""
    for part in loc:
        if part in ("body", "query", "path"):
            continue
        if isinstance(part, int):
            name += f"[{part}]"
        elif part in _BRANCH_LABELS or any(c in str(part) for c in "[-'"):
            continue  # union branch labels: str, list[str], literal['auto'], function-after[...]
        else:
            name += f".{part}" if name else str(part)
    return name


def _first_required(request: Request) -> str | None:
    """The first required top-level field of the route's body model (for an empty body)."""
    route = request.scope.get("route")
    for param in getattr(getattr(route, "dependant", None), "body_params", []):
        model = getattr(param.field_info, "annotation", None)
        if isinstance(model, type) and issubclass(model, BaseModel):
            return next((n for n, f in model.model_fields.items() if f.is_required()), None)
    return None


def validation_error(request: Request, exc: RequestValidationError) -> APIError:
    """A 400 naming the first invalid or missing parameter, worded as OpenAI does."""
    errors = exc.errors()
    first = errors[0] if errors else {"type": "value_error", "loc": (), "msg": "invalid"}
    param = param_name(tuple(first.get("loc", ())))
    if first["type"] == "json_invalid":
        return bad_request("We could not parse the JSON body of your request. (HINT: This likely "
                           "means you aren't using your HTTP library correctly. The OpenAI API "
                           "expects a JSON payload.)", code="invalid_json")
    if first["type"] == "missing":
        param = param or _first_required(request) or ""
        if not param:
            return bad_request("The request has no body; send a JSON object.",
                               code="missing_required_parameter")
        return bad_request(f"Missing required parameter: '{param}'.", param=param,
                           code="missing_required_parameter")
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    return bad_request(f"Invalid value for '{param}': {message}." if param else message,
                       param=param or None, code="invalid_value")


async def _api_error(request: Request, exc: APIError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    error = validation_error(request, exc)
    return JSONResponse(error.body(), status_code=error.status)


async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    message = (f"Invalid URL ({request.method} {request.url.path})" if exc.status_code in (404, 405)
               else str(exc.detail))
    return JSONResponse(error_body(message), status_code=exc.status_code)


async def _crash(request: Request, exc: Exception) -> JSONResponse:
    log.exception("internal error on %s %s", request.method, request.url.path)
    return JSONResponse(error_body("The server had an error while processing your request.",
                                   type="server_error"), status_code=500)


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    # starlette types a handler as taking any Exception; each of ours takes the one it is registered for
    app.add_exception_handler(APIError, _api_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _invalid)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _crash)

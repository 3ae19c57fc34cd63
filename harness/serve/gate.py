"""The HTTP middleware in front of every route: API key, upload size limit, injected faults."""

from __future__ import annotations

import asyncio
import hmac
import math

from fastapi import Request
from fastapi.responses import JSONResponse

from harness.serve.errors import error_body, file_too_large

MULTIPART_SLACK = 64 * 1024
UNAUTHENTICATED = ("/health",)


def _auth_failure(request: Request, api_key: str) -> JSONResponse | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return JSONResponse(error_body(
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            code="missing_api_key"), status_code=401)
    if not hmac.compare_digest(token.strip().encode("utf-8"), api_key.encode("utf-8")):
        return JSONResponse(error_body("Incorrect API key provided.", code="invalid_api_key"),
                            status_code=401)
    return None


async def gate(request: Request, call_next):
    """Refuse unauthenticated or oversized requests, inject the configured faults, else serve."""
    settings = request.app.state.settings
    path = request.url.path
    if settings.api_key and path not in UNAUTHENTICATED:
        refused = _auth_failure(request, settings.api_key)
        if refused is not None:
            return refused
    if request.method == "POST" and path == "/v1/files":
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > settings.max_upload_bytes + MULTIPART_SLACK:
            return JSONResponse(file_too_large(settings.max_upload_bytes).body(), status_code=400)
    kind = request.app.state.faults.decide(request.method, path)
    if kind == "429":
        wait = settings.faults.retry_after_s
        headers = {"retry-after-ms": str(int(wait * 1000)), "retry-after": str(max(1, math.ceil(wait)))}
        return JSONResponse(error_body("Rate limit reached (injected fault). Please retry.",
                                       type="requests", code="rate_limit_exceeded"),
                            status_code=429, headers=headers)
    if kind == "500":
        return JSONResponse(error_body("The server had an error while processing your request "
                                       "(injected fault).", type="server_error"), status_code=500)
    if kind == "stall":
        await request.body()  # keep the body: the request is still handled after the stall
        await asyncio.sleep(settings.faults.stall_s)
    return await call_next(request)

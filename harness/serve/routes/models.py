"""``/health`` and ``/v1/models``: liveness and the served model ids."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from harness.serve.deps import Backend
from harness.serve.errors import model_not_found

router = APIRouter()


@router.get("/health")
async def health(backend: Backend) -> dict[str, Any]:
    """Liveness and the served model ids: no auth, never faulted, never waits for generation."""
    return {"status": "ok", "models": sorted(m.id for m in backend.models())}


@router.get("/v1/models")
async def list_models(backend: Backend) -> dict[str, Any]:
    """``GET /v1/models``."""
    return {"object": "list", "data": [
        {"id": m.id, "object": "model", "created": m.created, "owned_by": m.owned_by}
        for m in backend.models()]}


@router.get("/v1/models/{model_id:path}")
async def retrieve_model(model_id: str, backend: Backend) -> dict[str, Any]:
    """``GET /v1/models/{id}`` (ids may contain ':' and '/')."""
    for m in backend.models():
        if m.id == model_id:
            return {"id": m.id, "object": "model", "created": m.created, "owned_by": m.owned_by}
    raise model_not_found(model_id)


def require_model(backend: Any, model: str) -> None:
    """404 unless ``model`` is served."""
    if model not in {m.id for m in backend.models()}:
        raise model_not_found(model)

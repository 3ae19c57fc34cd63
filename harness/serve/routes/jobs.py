"""``/v1/fine_tuning/jobs``: create (every field checked first), list, retrieve, cancel, events, checkpoints."""

from __future__ import annotations

import math
import re
import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from harness.serve.deps import Backend, Files, Worker
from harness.serve.errors import bad_request, model_not_found, not_found, unsupported
from harness.serve.jobs import valid_suffix
from harness.serve.records import TERMINAL, JobRecord, new_id, now
from harness.serve.schemas import FineTuningJobRequest, Hyperparameters
from harness.serve.store import Store, page

router = APIRouter()
_METADATA_QUERY = re.compile(r"^metadata\[(.+)\]$")
_LIMITS = {"n_epochs": (1, 50), "batch_size": (1, 256), "learning_rate_multiplier": (1e-6, 100)}


def hyperparameters(request: FineTuningJobRequest) -> dict[str, Any]:
    """The requested hyperparameters (top level or ``method.supervised``), range-checked."""
    chosen: Hyperparameters | None = request.hyperparameters
    param = "hyperparameters"
    if request.method is not None:
        if request.method.type != "supervised":
            raise unsupported(f"Fine-tuning method {request.method.type!r} is not supported by this "
                              "server (only 'supervised').", param="method.type")
        nested = request.method.supervised.hyperparameters if request.method.supervised else None
        if nested is not None and chosen is not None:
            raise bad_request("Specify hyperparameters either in 'method' or at the top level, "
                              "not both.", param="hyperparameters", code="invalid_value")
        if nested is not None:
            chosen, param = nested, "method.supervised.hyperparameters"
    values = chosen.model_dump() if chosen else {}
    result: dict[str, Any] = {}
    for name, (low, high) in _LIMITS.items():
        value = values.get(name)
        if value is None or value == "auto":
            result[name] = "auto"
            continue
        if not (low <= value <= high) or (isinstance(value, float) and not math.isfinite(value)):
            kind = "a number" if name == "learning_rate_multiplier" else "an integer"
            raise bad_request(f"Invalid value for '{param}.{name}': must be 'auto' or {kind} between "
                              f"{low} and {high}, got {value}.", param=f"{param}.{name}",
                              code="invalid_value")
        result[name] = value
    return result


def get_job(store: Store, job_id: str) -> JobRecord:
    """The job, or 404."""
    job = store.jobs.get(job_id)
    if job is None:
        raise not_found(f"Could not find fine-tuning job {job_id}.", param="fine_tuning_job_id",
                        code="fine_tuning_job_not_found")
    return job


def _require_training_file(store: Store, file_id: str, param: str) -> None:
    record = store.files.get(file_id)
    if record is None:
        raise bad_request(f"Invalid file ID {file_id!r}: no such file.", param=param,
                          code="invalid_file_id")
    if record.purpose != "fine-tune":
        raise bad_request(f"File {file_id} has purpose {record.purpose!r}; fine-tuning needs "
                          "purpose 'fine-tune'.", param=param, code="invalid_file_purpose")


def _check(body: FineTuningJobRequest, backend: Any, store: Store) -> None:
    models = {m.id: m for m in backend.models()}
    if body.model not in models:
        raise model_not_found(body.model)
    if not models[body.model].fine_tunable:
        raise bad_request(f"Model {body.model} is not available for fine-tuning.",
                          param="model", code="model_not_available")
    if body.integrations:
        raise unsupported("Integrations are not supported by this server.", param="integrations")
    _require_training_file(store, body.training_file, "training_file")
    if body.validation_file:
        _require_training_file(store, body.validation_file, "validation_file")
    if body.suffix is not None and not valid_suffix(body.suffix):
        raise bad_request("Invalid 'suffix': use 1 to 64 letters, digits, '-', '_' or '.'.",
                          param="suffix", code="invalid_value")
    if body.metadata is not None and (len(body.metadata) > 16 or any(
            len(k) > 64 or len(v) > 512 for k, v in body.metadata.items())):
        raise bad_request("Invalid 'metadata': at most 16 keys of up to 64 characters with "
                          "values of up to 512 characters.", param="metadata", code="invalid_value")


@router.post("/v1/fine_tuning/jobs")
def create_job(body: FineTuningJobRequest, backend: Backend, store: Files,
               worker: Worker) -> dict[str, Any]:
    """``POST /v1/fine_tuning/jobs``: checks everything, then queues the job."""
    _check(body, backend, store)
    job = JobRecord(
        id=new_id("ftjob"), created_at=now(), model=body.model,
        training_file=body.training_file, validation_file=body.validation_file or None,
        hyperparameters=hyperparameters(body),
        seed=body.seed if body.seed is not None else int(time.time()) % (2**31 - 1),
        suffix=body.suffix, metadata=body.metadata,
    )
    store.add_job(job)
    store.add_event(job.id, f"Created fine-tuning job: {job.id}")
    worker.submit(job.id)
    return job.to_api()


@router.get("/v1/fine_tuning/jobs")
def list_jobs(request: Request, store: Files, after: str | None = None,
              limit: Annotated[int, Query(ge=1, le=100)] = 20) -> dict[str, Any]:
    """``GET /v1/fine_tuning/jobs``: newest first, ``after`` / ``limit``, ``metadata[k]=v``."""
    metadata = {m.group(1): value for key, value in request.query_params.multi_items()
                if (m := _METADATA_QUERY.match(key))}
    return page([j.to_api() for j in store.jobs_newest_first(metadata)], after=after, limit=limit)


@router.get("/v1/fine_tuning/jobs/{job_id}")
def retrieve_job(job_id: str, store: Files) -> dict[str, Any]:
    """``GET /v1/fine_tuning/jobs/{id}``."""
    return get_job(store, job_id).to_api()


@router.post("/v1/fine_tuning/jobs/{job_id}/cancel")
def cancel_job(job_id: str, store: Files, worker: Worker) -> dict[str, Any]:
    """``POST /v1/fine_tuning/jobs/{id}/cancel``."""
    job = get_job(store, job_id)
    if job.status in TERMINAL:
        raise bad_request(f"Job {job_id} has already {job.status}; it cannot be cancelled.",
                          param="fine_tuning_job_id", code="job_already_finished")
    worker.cancel(job_id)
    return get_job(store, job_id).to_api()


@router.get("/v1/fine_tuning/jobs/{job_id}/events")
def list_events(job_id: str, store: Files, after: str | None = None,
                limit: Annotated[int, Query(ge=1, le=1000)] = 20) -> dict[str, Any]:
    """``GET /v1/fine_tuning/jobs/{id}/events``: newest first."""
    with store.lock:
        events = list(reversed(get_job(store, job_id).events))
    return page(events, after=after, limit=limit)


@router.get("/v1/fine_tuning/jobs/{job_id}/checkpoints")
def list_checkpoints(job_id: str, store: Files, after: str | None = None,
                     limit: Annotated[int, Query(ge=1, le=100)] = 10) -> dict[str, Any]:
    """``GET /v1/fine_tuning/jobs/{id}/checkpoints``: newest first."""
    with store.lock:
        checkpoints = list(reversed(get_job(store, job_id).checkpoints))
    return page(checkpoints, after=after, limit=limit)

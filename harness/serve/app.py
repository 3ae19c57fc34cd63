"""The FastAPI application: OpenAI's models, chat, completions, files and fine-tuning endpoints.

Every error is an OpenAI-shaped JSON body (see :mod:`harness.serve.errors`): malformed JSON
and invalid fields are 400s naming the parameter, unknown ids are 404s, nothing a client
sends produces a 500.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import math
import re
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, File, Form, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from harness.errors import DatasetError
from harness.protocol import DecodeParams, Generation
from harness.serve.backend import ModelBackend
from harness.serve.errors import (
    APIError,
    bad_request,
    error_body,
    model_not_found,
    not_found,
    unsupported,
)
from harness.serve.faults import FaultConfig, FaultInjector
from harness.serve.jobs import FineTuneWorker, valid_suffix
from harness.serve.schemas import (
    ChatCompletionRequest,
    ChatMessage,
    CompletionRequest,
    FineTuningJobRequest,
    Hyperparameters,
)
from harness.serve.store import TERMINAL, JobRecord, Store, new_id, now, page

log = logging.getLogger(__name__)
FILE_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
_METADATA_QUERY = re.compile(r"^metadata\[(.+)\]$")
_MULTIPART_SLACK = 64 * 1024


@dataclass(frozen=True)
class ServerSettings:
    """Limits and options of one server instance."""

    api_key: str | None = field(default=None, repr=False)
    max_upload_bytes: int = 50 * 1024 * 1024
    default_max_tokens: int = 64
    max_tokens_limit: int = 1024
    faults: FaultConfig = field(default_factory=FaultConfig)


def _param_name(loc: tuple[Any, ...]) -> str:
    parts = [p for p in loc if p not in ("body", "query", "path")]
    name = ""
    for part in parts:
        if isinstance(part, int):
            name += f"[{part}]"
        elif "[" in str(part) or "-" in str(part) or "function-after" in str(part):
            continue  # pydantic union branch labels
        else:
            name += f".{part}" if name else str(part)
    return name


def _validation_error(exc: RequestValidationError) -> APIError:
    first = exc.errors()[0] if exc.errors() else {"type": "value_error", "loc": (), "msg": "invalid"}
    param = _param_name(tuple(first.get("loc", ())))
    if first["type"] == "json_invalid":
        return bad_request("We could not parse the JSON body of your request. (HINT: This likely "
                           "means you aren't using your HTTP library correctly. The OpenAI API "
                           "expects a JSON payload.)", code="invalid_json")
    if first["type"] == "missing":
        return bad_request(f"Missing required parameter: '{param}'.", param=param or None,
                           code="missing_required_parameter")
    return bad_request(f"Invalid value for '{param}': {first.get('msg', 'invalid')}.",
                       param=param or None, code="invalid_value")


def _text_of(message: ChatMessage, index: int) -> str:
    if message.content is None:
        return ""
    if isinstance(message.content, str):
        return message.content
    texts = []
    for j, part in enumerate(message.content):
        if part.type != "text" or part.text is None:
            raise unsupported(f"Content part type {part.type!r} is not supported by this server.",
                              param=f"messages[{index}].content[{j}]")
        texts.append(part.text)
    return "".join(texts)


def _stops(stop: str | list[str] | None) -> tuple[str, ...]:
    if stop is None:
        return ()
    stops = [stop] if isinstance(stop, str) else list(stop)
    if len(stops) > 4:
        raise bad_request("Invalid 'stop': at most 4 stop sequences are allowed.", param="stop",
                          code="invalid_value")
    return tuple(s for s in stops if s)


def _hyperparameters(request: FineTuningJobRequest) -> dict[str, Any]:
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
    limits = {"n_epochs": (1, 50), "batch_size": (1, 256), "learning_rate_multiplier": (1e-6, 100)}
    result: dict[str, Any] = {}
    for name, (low, high) in limits.items():
        value = values.get(name)
        if value is None or value == "auto":
            result[name] = "auto"
            continue
        if not (low <= value <= high) or (isinstance(value, float) and not math.isfinite(value)):
            raise bad_request(f"Invalid value for '{param}.{name}': must be 'auto' or between "
                              f"{low} and {high}, got {value}.", param=f"{param}.{name}",
                              code="invalid_value")
        result[name] = value
    return result


def _usage(generations: list[Generation], prompts_count: int, n: int) -> dict[str, int]:
    prompt = sum(g.prompt_tokens for g in generations[::n]) if n else 0
    completion = sum(g.completion_tokens for g in generations)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def create_app(backend: ModelBackend, store: Store, worker: FineTuneWorker,
               settings: ServerSettings | None = None) -> FastAPI:
    """The OpenAI-compatible app over ``backend`` (generation) and ``store`` / ``worker`` (jobs)."""
    settings = settings or ServerSettings()
    faults = FaultInjector(settings.faults)
    app = FastAPI(title="ft-harness OpenAI-compatible server", docs_url=None, redoc_url=None)
    app.state.faults = faults
    expected_key = settings.api_key.encode("utf-8") if settings.api_key else None

    # -- errors ---------------------------------------------------------------------------
    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        error = _validation_error(exc)
        return JSONResponse(error.body(), status_code=error.status)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = (f"Invalid URL ({request.method} {request.url.path})" if exc.status_code in (404, 405)
                   else str(exc.detail))
        return JSONResponse(error_body(message), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return JSONResponse(error_body("The server had an error while processing your request.",
                                       type="server_error"), status_code=500)

    # -- auth, size limit and fault injection ---------------------------------------------------
    @app.middleware("http")
    async def _gate(request: Request, call_next):
        path = request.url.path
        if expected_key is not None and path != "/health":
            header = request.headers.get("authorization", "")
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token:
                return JSONResponse(error_body(
                    "You didn't provide an API key. You need to provide your API key in an "
                    "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                    code="missing_api_key"), status_code=401)
            if not hmac.compare_digest(token.strip().encode("utf-8"), expected_key):
                return JSONResponse(error_body("Incorrect API key provided.", code="invalid_api_key"),
                                    status_code=401)
        if request.method == "POST" and path == "/v1/files":
            declared = request.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > settings.max_upload_bytes + _MULTIPART_SLACK:
                return JSONResponse(_too_large(settings.max_upload_bytes).body(), status_code=400)
        kind = faults.decide(request.method, path)
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

    # -- models ---------------------------------------------------------------------------------
    def model_ids() -> set[str]:
        return {m.id for m in backend.models()}

    def require_model(model: str) -> None:
        if model not in model_ids():
            raise model_not_found(model)

    @app.get("/health")
    def health() -> dict[str, Any]:
        """Liveness and the served model ids (no auth, never faulted)."""
        return {"status": "ok", "models": sorted(model_ids())}

    @app.get("/v1/models")
    def list_models() -> dict[str, Any]:
        """``GET /v1/models``."""
        return {"object": "list", "data": [
            {"id": m.id, "object": "model", "created": m.created, "owned_by": m.owned_by}
            for m in backend.models()]}

    @app.get("/v1/models/{model_id:path}")
    def retrieve_model(model_id: str) -> dict[str, Any]:
        """``GET /v1/models/{id}`` (ids may contain ':' and '/')."""
        for m in backend.models():
            if m.id == model_id:
                return {"id": m.id, "object": "model", "created": m.created, "owned_by": m.owned_by}
        raise model_not_found(model_id)

    # -- generation --------------------------------------------------------------------------------
    def decode_params(body: ChatCompletionRequest | CompletionRequest, max_tokens: int | None) -> DecodeParams:
        if body.stream:
            raise unsupported("Streaming is not supported by this server; send stream=false.",
                              param="stream")
        if body.logprobs:
            raise unsupported("logprobs are not supported by this server.", param="logprobs")
        limit = max_tokens or settings.default_max_tokens
        if limit > settings.max_tokens_limit:
            raise bad_request(f"max_tokens is too large: {limit}. This server supports at most "
                              f"{settings.max_tokens_limit} completion tokens.", param="max_tokens",
                              code="invalid_value")
        return DecodeParams(max_new_tokens=limit,
                            temperature=body.temperature if body.temperature is not None else 1.0,
                            top_p=body.top_p if body.top_p is not None else 1.0,
                            seed=body.seed if body.seed is not None else 0,
                            stop=_stops(body.stop))

    def finish_reason(generation: Generation, params: DecodeParams) -> str:
        return "length" if generation.completion_tokens >= params.max_new_tokens else "stop"

    @app.post("/v1/chat/completions")
    def chat_completions(body: ChatCompletionRequest) -> dict[str, Any]:
        """``POST /v1/chat/completions`` with usage, n, stop, temperature and max_tokens."""
        require_model(body.model)
        if body.tools:
            raise unsupported("Tool calling is not supported by this server.", param="tools")
        if body.response_format and body.response_format.get("type") not in (None, "text"):
            raise unsupported("Only response_format type 'text' is supported by this server.",
                              param="response_format")
        params = decode_params(body, body.max_completion_tokens or body.max_tokens)
        messages = [{"role": "system" if m.role == "developer" else m.role, "content": _text_of(m, i)}
                    for i, m in enumerate(body.messages)]
        generations = backend.chat(body.model, [messages] * body.n, params)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion",
            "created": now(), "model": body.model, "system_fingerprint": "fp_ft_harness",
            "choices": [{"index": i, "finish_reason": finish_reason(g, params), "logprobs": None,
                         "message": {"role": "assistant", "content": g.text, "refusal": None}}
                        for i, g in enumerate(generations)],
            "usage": _usage(generations, 1, body.n),
        }

    @app.post("/v1/completions")
    def completions(body: CompletionRequest) -> dict[str, Any]:
        """``POST /v1/completions`` for raw text prompts (a string or a list)."""
        require_model(body.model)
        if body.echo or body.suffix or (body.best_of or 1) > 1:
            raise unsupported("echo, suffix and best_of are not supported by this server.",
                              param="echo" if body.echo else "suffix" if body.suffix else "best_of")
        params = decode_params(body, body.max_tokens)
        prompts = [body.prompt] if isinstance(body.prompt, str) else list(body.prompt)
        if not prompts:
            raise bad_request("Invalid 'prompt': expected at least one prompt.", param="prompt",
                              code="invalid_value")
        expanded = [p for p in prompts for _ in range(body.n)]
        generations = backend.complete(body.model, expanded, params)
        return {
            "id": f"cmpl-{uuid.uuid4().hex[:24]}", "object": "text_completion", "created": now(),
            "model": body.model, "system_fingerprint": "fp_ft_harness",
            "choices": [{"index": i, "text": g.text, "logprobs": None,
                         "finish_reason": finish_reason(g, params)} for i, g in enumerate(generations)],
            "usage": _usage(generations, len(prompts), body.n),
        }

    # -- files ------------------------------------------------------------------------------------
    def get_file(file_id: str):
        record = store.files.get(file_id)
        if record is None:
            raise not_found(f"No such File object: {file_id}", param="id", code="file_not_found")
        return record

    @app.post("/v1/files")
    def upload_file(file: Annotated[UploadFile, File()], purpose: Annotated[str, Form()]) -> dict[str, Any]:
        """``POST /v1/files`` (multipart); fine-tune uploads are validated as chat JSONL."""
        if purpose not in FILE_PURPOSES:
            raise bad_request(f"Invalid value for 'purpose': {purpose!r} is not one of "
                              f"{', '.join(FILE_PURPOSES)}.", param="purpose", code="invalid_value")
        content = file.file.read(settings.max_upload_bytes + 1)
        if len(content) > settings.max_upload_bytes:
            raise _too_large(settings.max_upload_bytes)
        filename = Path(file.filename or "upload.jsonl").name
        if purpose == "fine-tune":
            _validate_training_file(content, filename)
        return store.add_file(content, filename, purpose).to_api()

    @app.get("/v1/files")
    def list_files(purpose: str | None = None, after: str | None = None,
                   limit: Annotated[int, Query(ge=1, le=10000)] = 10000,
                   order: Annotated[str, Query(pattern="^(asc|desc)$")] = "desc") -> dict[str, Any]:
        """``GET /v1/files`` with purpose filter and cursor paging."""
        records = sorted(store.files.values(), key=lambda f: (f.created_at, f.id),
                         reverse=order == "desc")
        items = [f.to_api() for f in records if purpose is None or f.purpose == purpose]
        return page(items, after=after, limit=limit)

    @app.get("/v1/files/{file_id}")
    def retrieve_file(file_id: str) -> dict[str, Any]:
        """``GET /v1/files/{id}``."""
        return get_file(file_id).to_api()

    @app.delete("/v1/files/{file_id}")
    def delete_file(file_id: str) -> dict[str, Any]:
        """``DELETE /v1/files/{id}``."""
        get_file(file_id)
        store.delete_file(file_id)
        return {"id": file_id, "object": "file", "deleted": True}

    @app.get("/v1/files/{file_id}/content")
    def file_content(file_id: str) -> Response:
        """``GET /v1/files/{id}/content``: the uploaded bytes."""
        record = get_file(file_id)
        return Response(Path(record.path).read_bytes(), media_type="application/octet-stream")

    # -- fine-tuning jobs --------------------------------------------------------------------------
    def get_job(job_id: str) -> JobRecord:
        job = store.jobs.get(job_id)
        if job is None:
            raise not_found(f"Could not find fine-tuning job {job_id}.", param="fine_tuning_job_id",
                            code="fine_tuning_job_not_found")
        return job

    def require_training_file(file_id: str, param: str) -> None:
        record = store.files.get(file_id)
        if record is None:
            raise bad_request(f"Invalid file ID {file_id!r}: no such file.", param=param,
                              code="invalid_file_id")
        if record.purpose != "fine-tune":
            raise bad_request(f"File {file_id} has purpose {record.purpose!r}; fine-tuning needs "
                              "purpose 'fine-tune'.", param=param, code="invalid_file_purpose")

    @app.post("/v1/fine_tuning/jobs")
    def create_job(body: FineTuningJobRequest) -> dict[str, Any]:
        """``POST /v1/fine_tuning/jobs``: checks everything, then queues the job."""
        models = {m.id: m for m in backend.models()}
        if body.model not in models:
            raise model_not_found(body.model)
        if not models[body.model].fine_tunable:
            raise bad_request(f"Model {body.model} is not available for fine-tuning.",
                              param="model", code="model_not_available")
        if body.integrations:
            raise unsupported("Integrations are not supported by this server.", param="integrations")
        require_training_file(body.training_file, "training_file")
        if body.validation_file:
            require_training_file(body.validation_file, "validation_file")
        if body.suffix is not None and not valid_suffix(body.suffix):
            raise bad_request("Invalid 'suffix': use 1 to 64 letters, digits, '-', '_' or '.'.",
                              param="suffix", code="invalid_value")
        if body.metadata is not None and (len(body.metadata) > 16 or any(
                len(k) > 64 or len(v) > 512 for k, v in body.metadata.items())):
            raise bad_request("Invalid 'metadata': at most 16 keys of up to 64 characters with "
                              "values of up to 512 characters.", param="metadata", code="invalid_value")
        job = JobRecord(
            id=new_id("ftjob"), created_at=now(), model=body.model,
            training_file=body.training_file, validation_file=body.validation_file or None,
            hyperparameters=_hyperparameters(body),
            seed=body.seed if body.seed is not None else int(time.time()) % (2**31 - 1),
            suffix=body.suffix, metadata=body.metadata,
        )
        store.add_job(job)
        store.add_event(job.id, f"Created fine-tuning job: {job.id}")
        worker.submit(job.id)
        return job.to_api()

    @app.get("/v1/fine_tuning/jobs")
    def list_jobs(request: Request, after: str | None = None,
                  limit: Annotated[int, Query(ge=1, le=100)] = 20) -> dict[str, Any]:
        """``GET /v1/fine_tuning/jobs``: newest first, ``after`` / ``limit``, ``metadata[k]=v``."""
        metadata = {m.group(1): value for key, value in request.query_params.multi_items()
                    if (m := _METADATA_QUERY.match(key))}
        return page([j.to_api() for j in store.jobs_newest_first(metadata)], after=after, limit=limit)

    @app.get("/v1/fine_tuning/jobs/{job_id}")
    def retrieve_job(job_id: str) -> dict[str, Any]:
        """``GET /v1/fine_tuning/jobs/{id}``."""
        return get_job(job_id).to_api()

    @app.post("/v1/fine_tuning/jobs/{job_id}/cancel")
    def cancel_job(job_id: str) -> dict[str, Any]:
        """``POST /v1/fine_tuning/jobs/{id}/cancel``."""
        job = get_job(job_id)
        if job.status in TERMINAL:
            raise bad_request(f"Job {job_id} has already {job.status}; it cannot be cancelled.",
                              param="fine_tuning_job_id", code="job_already_finished")
        worker.cancel(job_id)
        return get_job(job_id).to_api()

    @app.get("/v1/fine_tuning/jobs/{job_id}/events")
    def list_events(job_id: str, after: str | None = None,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 20) -> dict[str, Any]:
        """``GET /v1/fine_tuning/jobs/{id}/events``: newest first."""
        with store.lock:
            events = list(reversed(get_job(job_id).events))
        return page(events, after=after, limit=limit)

    @app.get("/v1/fine_tuning/jobs/{job_id}/checkpoints")
    def list_checkpoints(job_id: str, after: str | None = None,
                         limit: Annotated[int, Query(ge=1, le=100)] = 10) -> dict[str, Any]:
        """``GET /v1/fine_tuning/jobs/{id}/checkpoints``: newest first."""
        with store.lock:
            checkpoints = list(reversed(get_job(job_id).checkpoints))
        return page(checkpoints, after=after, limit=limit)

    return app


def _too_large(limit: int) -> APIError:
    return bad_request(f"File is too large: this server accepts uploads of at most {limit} bytes.",
                       param="file", code="file_too_large")


def _validate_training_file(content: bytes, filename: str) -> None:
    """Reject a fine-tuning upload that is not valid chat JSONL (400 naming line and field)."""
    from harness.data import load_split

    with tempfile.TemporaryDirectory(prefix="ft-upload-") as folder:
        path = Path(folder) / filename
        path.write_bytes(content)
        try:
            load_split(path, name="upload", format="chat")
        except DatasetError as exc:
            message = str(exc).replace(str(path), filename)
            raise bad_request(f"Invalid file format for fine-tuning: {message}", param="file",
                              code="invalid_file_format") from None

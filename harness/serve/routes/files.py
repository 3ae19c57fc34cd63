"""``/v1/files``: multipart upload (fine-tune files validated as chat JSONL), list, content, delete."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import Response

from harness.data import load_split
from harness.errors import DatasetError
from harness.serve.deps import Files, Settings
from harness.serve.errors import bad_request, file_too_large, not_found
from harness.serve.records import FileRecord
from harness.serve.store import Store, page

router = APIRouter()
FILE_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
MAX_FILENAME_BYTES = 255
_FORMAT_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")


def upload_name(raw: str | None) -> str:
    """The file name to keep: the last path component, refused when unusable (400)."""
    name = (raw or "upload.jsonl").replace("\\", "/").rsplit("/", 1)[-1]
    problem = None
    if name in ("", ".", ".."):
        problem = f"{raw!r} is not a file name"
    elif "\x00" in name or any(ord(c) < 32 for c in name):
        problem = "it contains a NUL or control character"
    elif len(name.encode("utf-8")) > MAX_FILENAME_BYTES:
        problem = f"it is longer than {MAX_FILENAME_BYTES} bytes"
    if problem:
        raise bad_request(f"Invalid file name: {problem}.", param="file", code="invalid_file_name")
    return name


def get_file(store: Store, file_id: str) -> FileRecord:
    """The file, or 404."""
    record = store.files.get(file_id)
    if record is None:
        raise not_found(f"No such File object: {file_id}", param="id", code="file_not_found")
    return record


@router.post("/v1/files")
def upload_file(file: Annotated[UploadFile, File()], purpose: Annotated[str, Form()],
                store: Files, settings: Settings) -> dict[str, Any]:
    """``POST /v1/files`` (multipart); fine-tune uploads are validated as chat JSONL."""
    if purpose not in FILE_PURPOSES:
        raise bad_request(f"Invalid value for 'purpose': {purpose!r} is not one of "
                          f"{', '.join(FILE_PURPOSES)}.", param="purpose", code="invalid_value")
    filename = upload_name(file.filename)
    content = file.file.read(settings.max_upload_bytes + 1)
    if len(content) > settings.max_upload_bytes:
        raise file_too_large(settings.max_upload_bytes)
    if purpose == "fine-tune":
        validate_training_file(content, filename)
    return store.add_file(content, filename, purpose).to_api()


@router.get("/v1/files")
def list_files(store: Files, purpose: str | None = None, after: str | None = None,
               limit: Annotated[int, Query(ge=1, le=10000)] = 10000,
               order: Annotated[str, Query(pattern="^(asc|desc)$")] = "desc") -> dict[str, Any]:
    """``GET /v1/files`` with purpose filter and cursor paging."""
    with store.lock:
        records = sorted(store.files.values(), key=lambda f: (f.created_at, f.id),
                         reverse=order == "desc")
    items = [f.to_api() for f in records if purpose is None or f.purpose == purpose]
    return page(items, after=after, limit=limit)


@router.get("/v1/files/{file_id}")
def retrieve_file(file_id: str, store: Files) -> dict[str, Any]:
    """``GET /v1/files/{id}``."""
    return get_file(store, file_id).to_api()


@router.delete("/v1/files/{file_id}")
def delete_file(file_id: str, store: Files) -> dict[str, Any]:
    """``DELETE /v1/files/{id}``."""
    get_file(store, file_id)
    store.delete_file(file_id)
    return {"id": file_id, "object": "file", "deleted": True}


@router.get("/v1/files/{file_id}/content")
def file_content(file_id: str, store: Files) -> Response:
    """``GET /v1/files/{id}/content``: the uploaded bytes."""
    record = get_file(store, file_id)
    try:
        content = store.file_path(record).read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise not_found(f"The content of File {file_id} is no longer stored on this server.",
                        param="id", code="file_content_not_found") from None
    return Response(content, media_type="application/octet-stream")


def validate_training_file(content: bytes, filename: str) -> None:
    """Reject a fine-tuning upload that is not valid chat JSONL (400 naming line and field)."""

    suffix = Path(filename).suffix.lower()
    with tempfile.TemporaryDirectory(prefix="ft-upload-") as folder:
        path = Path(folder) / f"upload{suffix if suffix in _FORMAT_SUFFIXES else '.jsonl'}"
        path.write_bytes(content)
        try:
            load_split(path, name="upload", format="chat")
        except DatasetError as exc:
            message = str(exc).replace(str(path), filename)
            raise bad_request(f"Invalid file format for fine-tuning: {message}", param="file",
                              code="invalid_file_format") from None

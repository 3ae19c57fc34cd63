"""Uploading training files exactly once, and the find-before-create rule jobs share with them.

A request whose reply was lost (timeout, dropped connection, 5xx) may still have gone through:
before each attempt the server is asked whether an earlier one already made the thing (files
by their content-addressed name, jobs by their metadata tag).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.backends.http import RemoteCallError
from harness.backends.openai.state import upload_name
from harness.errors import TrainingError

#: ``call(operation, what)``: run one remote operation with retries (see ``harness.backends.http.call_endpoint``).
Call = Callable[[Callable[[], Any], str], Any]


def exactly_once(find: Callable[[], Any], create: Callable[[], Any], *, settle_s: float,
                 sleep: Callable[[float], None],
                 on_maybe_duplicate: Callable[[], None] = lambda: None) -> Callable[[], Any]:
    """An attempt that first looks for what an earlier attempt with a lost reply made.

    After a lost reply the next attempt waits ``settle_s`` so a slow create lands first;
    ``on_maybe_duplicate`` is told whenever an attempt may have created something anyway.
    """
    import openai

    lost = {"reply": False}

    def attempt():
        if lost["reply"]:
            sleep(settle_s)
        existing = find()
        if existing is not None:
            return existing
        try:
            return create()
        except openai.APIConnectionError:  # includes timeouts: it may have gone through
            lost["reply"] = True
            on_maybe_duplicate()
            raise
        except openai.InternalServerError:
            on_maybe_duplicate()
            raise

    return attempt


@dataclass
class Uploader:
    """Uploads a training or validation file once and waits until the server has processed it."""

    client: Any
    call: Call
    progress: Callable[[str], None]
    settle_s: float
    poll_interval_s: float = 5.0
    ready_timeout_s: float = 300.0
    sleep: Callable[[float], None] = time.sleep
    on_maybe_duplicate: Callable[[], None] = lambda: None

    def upload(self, known_id: str | None, kind: str, data: bytes) -> str:
        """The id of ``data`` on the server: ``known_id`` if it still exists, else a new upload."""
        client = self.client
        name = upload_name(kind, data)
        if known_id is not None:
            try:
                self.call(lambda: client.files.retrieve(known_id), f"retrieve file {known_id}")
                return known_id
            except RemoteCallError as exc:
                if exc.status_code != 404:
                    raise

        def find():
            for existing in client.files.list(purpose="fine-tune").data:
                if existing.filename == name and existing.bytes == len(data):
                    return existing
            return None

        def create():
            return client.files.create(file=(name, data, "application/jsonl"), purpose="fine-tune")

        attempt = exactly_once(find, create, settle_s=self.settle_s, sleep=self.sleep,
                               on_maybe_duplicate=self.on_maybe_duplicate)
        uploaded = self.call(attempt, f"upload {kind} file")
        self.progress(f"{kind} file: {uploaded.id} ({len(data)} bytes)")
        self.wait_processed(uploaded)
        return uploaded.id

    def wait_processed(self, uploaded: Any) -> None:
        """Poll until the file is ``processed``; a processing error or timeout is a TrainingError."""
        deadline = time.monotonic() + self.ready_timeout_s
        status = getattr(uploaded, "status", "processed")
        while status not in ("processed", None):
            if status == "error":
                raise TrainingError(f"file {uploaded.id} failed processing: "
                                    f"{getattr(uploaded, 'status_details', '') or 'no details'}")
            if time.monotonic() > deadline:
                raise TrainingError(f"file {uploaded.id} still {status!r} after "
                                    f"{self.ready_timeout_s:.0f}s")
            self.sleep(min(self.poll_interval_s, 2.0))
            status = self.call(lambda: self.client.files.retrieve(uploaded.id),
                               f"retrieve file {uploaded.id}").status

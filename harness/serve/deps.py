"""FastAPI dependencies: the objects behind one app, read from ``request.app.state``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from harness.serve.backend import ModelBackend
from harness.serve.jobs import FineTuneWorker
from harness.serve.settings import ServerSettings
from harness.serve.store import Store


def _backend(request: Request) -> ModelBackend:
    return request.app.state.backend


def _store(request: Request) -> Store:
    return request.app.state.store


def _worker(request: Request) -> FineTuneWorker:
    return request.app.state.worker


def _settings(request: Request) -> ServerSettings:
    return request.app.state.settings


Backend = Annotated[ModelBackend, Depends(_backend)]
Files = Annotated[Store, Depends(_store)]
Worker = Annotated[FineTuneWorker, Depends(_worker)]
Settings = Annotated[ServerSettings, Depends(_settings)]

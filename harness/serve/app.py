"""The FastAPI application: OpenAI's models, chat, completions, files and fine-tuning endpoints.

Routes live in :mod:`harness.serve.routes` (one ``APIRouter`` per group) and reach the
backend, store, worker and settings through ``request.app.state`` (see
:mod:`harness.serve.deps`). Every error is an OpenAI-shaped JSON body (see
:mod:`harness.serve.handlers`): malformed JSON and invalid fields are 400s naming the
parameter, unknown ids are 404s, nothing a client sends produces a 500.
"""

from __future__ import annotations

from fastapi import FastAPI

from harness.serve import gate, handlers
from harness.serve.backend import ModelBackend
from harness.serve.faults import FaultInjector
from harness.serve.jobs import FineTuneWorker
from harness.serve.routes import files, generation, jobs, models
from harness.serve.settings import ServerSettings
from harness.serve.store import Store

__all__ = ["ServerSettings", "create_app"]


def create_app(backend: ModelBackend, store: Store, worker: FineTuneWorker,
               settings: ServerSettings | None = None) -> FastAPI:
    """The OpenAI-compatible app over ``backend`` (generation) and ``store`` / ``worker`` (jobs)."""

    settings = settings or ServerSettings()
    app = FastAPI(title="ft-harness OpenAI-compatible server", docs_url=None, redoc_url=None)
    app.state.backend = backend
    app.state.store = store
    app.state.worker = worker
    app.state.settings = settings
    app.state.faults = FaultInjector(settings.faults)
    handlers.install(app)
    app.middleware("http")(gate.gate)
    for module in (models, generation, files, jobs):
        app.include_router(module.router)
    return app

"""Run the server: in the foreground (``ft-harness serve``) or on a background thread (tests).

Both bind 127.0.0.1 by default; port 0 picks a free port, which is reported back.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.serve.app import ServerSettings, create_app
from harness.serve.backend import LocalBackend, ModelBackend
from harness.serve.jobs import FineTuneWorker, TrainFn, TrainingDefaults
from harness.serve.store import Store

log = logging.getLogger(__name__)
DEFAULT_HOST = "127.0.0.1"


@dataclass
class RunningServer:
    """A started server: where it listens and the objects behind it (for tests to inspect)."""

    base_url: str
    host: str
    port: int
    store: Store
    worker: FineTuneWorker
    backend: ModelBackend
    app: object = field(repr=False, default=None)


def bind_socket(host: str = DEFAULT_HOST, port: int = 0) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: the OS picks a free one)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit this: without it Nagle's algorithm holds back the body of
    # each response until the client's delayed ACK, about 40 ms per keep-alive request.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def local_backend(base: tuple[str, Path], adapters: Mapping[str, Path] | None = None,
                  **options) -> LocalBackend:
    """The PEFT multi-adapter backend for ``(name, directory)`` of the base plus named adapters."""
    name, path = base
    return LocalBackend(name, path, adapters or {}, **options)


def _restore_models(store: Store, backend: ModelBackend) -> None:
    """Serve again the fine-tuned models a previous run of this state directory produced."""
    served = {m.id for m in backend.models()}
    for job in sorted(store.jobs.values(), key=lambda j: j.sequence):
        if job.status != "succeeded" or not job.fine_tuned_model or job.fine_tuned_model in served:
            continue
        adapter_dir = store.resolve(job.adapter_dir) if job.adapter_dir else None
        if job.model not in served or adapter_dir is None or not adapter_dir.is_dir():
            log.warning("job %s: model %s cannot be served again (base or adapter missing)",
                        job.id, job.fine_tuned_model)
            continue
        backend.add_adapter(job.fine_tuned_model, adapter_dir)


@contextlib.contextmanager
def assemble(backend: ModelBackend, *, state_dir: Path | None = None,
             settings: ServerSettings | None = None, train_fn: TrainFn | None = None,
             training: TrainingDefaults | None = None,
             store: Store | None = None) -> Iterator[tuple[Any, Store, FineTuneWorker]]:
    """The app with its store (given, on ``state_dir`` or a temporary folder) and a started worker."""
    with contextlib.ExitStack() as stack:
        if store is None and state_dir is None:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ft-serve-")))
            store = Store(root, persist=False)
        elif store is None and state_dir is not None:
            store = Store(Path(state_dir), persist=True)
        assert store is not None
        _restore_models(store, backend)
        worker = FineTuneWorker(store, backend, train_fn=train_fn, defaults=training)
        app = create_app(backend, store, worker, settings)
        worker.start()
        try:
            yield app, store, worker
        finally:
            worker.stop()


@contextlib.contextmanager
def serve_in_thread(backend: ModelBackend, *, host: str = DEFAULT_HOST, port: int = 0,
                    state_dir: Path | None = None, settings: ServerSettings | None = None,
                    train_fn: TrainFn | None = None, training: TrainingDefaults | None = None,
                    startup_timeout_s: float = 30.0) -> Iterator[RunningServer]:
    """Run the server on a daemon thread; yields a :class:`RunningServer` (``.base_url`` ends in /v1)."""
    import uvicorn

    with assemble(backend, state_dir=state_dir, settings=settings, train_fn=train_fn,
                  training=training) as (app, store, worker):
        sock = bind_socket(host, port)
        actual_port = sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                timeout_graceful_shutdown=1)
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                                  name=f"ft-serve-{actual_port}", daemon=True)
        thread.start()
        deadline = time.monotonic() + startup_timeout_s
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.01)
        try:
            yield RunningServer(f"http://{host}:{actual_port}/v1", host, actual_port, store, worker,
                                backend, app)
        finally:
            server.should_exit = True
            thread.join(10)
            sock.close()


def run_forever(backend: ModelBackend, *, host: str = DEFAULT_HOST, port: int = 0,
                state_dir: Path | None = None, settings: ServerSettings | None = None,
                training: TrainingDefaults | None = None, store: Store | None = None,
                announce: Callable[[str], None] = print) -> None:
    """Serve until interrupted; ``announce`` gets the base URL once the port is bound."""
    import uvicorn

    with assemble(backend, state_dir=state_dir, settings=settings, training=training,
                  store=store) as (app, _, _):
        sock = bind_socket(host, port)
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        announce(f"http://{host}:{sock.getsockname()[1]}/v1")
        try:
            server.run(sockets=[sock])
        finally:
            sock.close()

"""TCP_NODELAY on the server socket and a liveness probe that never waits for generation.

The keep-alive latency itself is measured, not asserted: ``ft-harness bench serve_load``."""

from __future__ import annotations

import socket
import threading

import httpx
import pytest

from harness.protocol import Generation
from harness.serve.runtime import bind_socket, serve_in_thread


def test_the_listening_socket_disables_nagle():
    sock = bind_socket("127.0.0.1", 0)
    try:
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        sock.close()


class _Tokenizer:
    pad_token_id = eos_token_id = 0


@pytest.fixture
def blocked_backend(monkeypatch):
    """A LocalBackend whose generation blocks until released (no model weights needed)."""
    import harness.backends.hf.inference as inference
    from harness.serve.backend import LocalBackend

    entered, release = threading.Event(), threading.Event()

    def slow_generate(model, tokenizer, prompts, params, **_):
        entered.set()
        release.wait(10)
        return [Generation("done", 1, 1) for _ in prompts]

    monkeypatch.setattr(inference, "load_model", lambda *a, **k: (object(), _Tokenizer()))
    monkeypatch.setattr(inference, "generate_batch", slow_generate)
    backend = LocalBackend("base", "unused-dir")
    yield backend, entered, release
    release.set()


def test_health_answers_while_a_generation_holds_the_backend(blocked_backend):
    backend, entered, release = blocked_backend
    with serve_in_thread(backend) as srv:
        root = srv.base_url.removesuffix("/v1")
        chat = threading.Thread(target=httpx.post, args=(f"{srv.base_url}/chat/completions",),
                                kwargs={"json": {"model": "base",
                                                 "messages": [{"role": "user", "content": "x"}]},
                                        "timeout": 20})
        chat.start()
        assert entered.wait(10), "the generation never started"
        # the generation holds the backend until release (up to 10 s): both answers arrive while
        # the chat request is still running, whatever the load on the machine
        health = httpx.get(f"{root}/health", timeout=5)
        models = httpx.get(f"{srv.base_url}/models", timeout=5)
        still_generating = chat.is_alive()
        release.set()
        chat.join(20)
    assert health.status_code == 200 and health.json()["models"] == ["base"]
    assert models.status_code == 200
    assert still_generating

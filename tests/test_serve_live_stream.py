"""Issue 25 item 5: ``stream=True`` sends tokens as they generate and stops when the client goes.

A real tiny Llama behind ``ft-harness serve`` on 127.0.0.1, real HTTP. Forward hooks on the
model count decoding steps, keep special tokens from ending the reply early, and hold one step
until an event the test controls, so ordering is proven by events, never by wall-clock.
"""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

from harness.serve import streaming
from harness.serve.backend import LocalBackend
from harness.serve.runtime import serve_in_thread

pytestmark = pytest.mark.slow
WAIT_S = 30.0  # only a bound on a wait that, when the feature works, ends at once


class Steps:
    """Forward hooks: the ordered event log, step counting, special tokens masked, step ``hold_at`` held."""

    def __init__(self, backend: LocalBackend, hold_at: int, release: threading.Event) -> None:
        self.log: list[str] = []
        self.forwards = 0
        self.release = release
        self.hold_at = hold_at
        self.released_in_time: bool | None = None
        model = backend._model
        special = sorted(set(backend.tokenizer.all_special_ids))
        self._handles = [model.register_forward_pre_hook(self._before),
                         model.register_forward_hook(self._after)]
        self._special = special

    def _before(self, module, args):
        self.forwards += 1
        if self.forwards == self.hold_at:
            self.released_in_time = self.release.wait(WAIT_S)
        self.log.append(f"forward {self.forwards}")  # logged as the step runs

    def _after(self, module, args, output):
        output.logits[..., self._special] = float("-inf")  # no reply ends before the test is done
        return output

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


def data_lines(response: httpx.Response):
    for line in response.iter_lines():
        if line.startswith("data: ") and line != "data: [DONE]":
            yield json.loads(line.removeprefix("data: "))


def test_the_first_token_reaches_the_client_before_generation_ends(tiny_base, record_property):
    backend = LocalBackend("tiny", tiny_base, batch_size=8)
    first_read = threading.Event()
    steps = Steps(backend, hold_at=2, release=first_read)  # step 2 waits for the client's first chunk
    body = {"model": "tiny", "prompt": "the cat", "max_tokens": 12, "temperature": 0, "stream": True}
    try:
        with serve_in_thread(backend) as server, httpx.Client(timeout=60) as client:
            began = time.perf_counter()
            first_at = None
            texts = []
            with client.stream("POST", f"{server.base_url}/completions", json=body) as response:
                assert response.status_code == 200
                for chunk in data_lines(response):
                    if chunk["choices"] and chunk["choices"][0]["text"] and first_at is None:
                        first_at = time.perf_counter()
                        steps.log.append("client got the first token")
                        first_read.set()
                    texts += [c["text"] for c in chunk["choices"]]
            total = time.perf_counter() - began
            plain = client.post(f"{server.base_url}/completions", json={**body, "stream": False}).json()
    finally:
        steps.remove()
    assert steps.released_in_time is True, steps.log  # the held step was released by the client's read
    got = steps.log.index("client got the first token")
    assert got < steps.log.index("forward 12")  # the first token arrived while generation went on
    assert steps.log[:got] == ["forward 1"]  # ... after the first step and before any other one
    assert "".join(texts) == plain["choices"][0]["text"]
    assert first_at is not None
    record_property("time_to_first_token_s", round(first_at - began, 4))
    record_property("total_s", round(total, 4))
    print(f"time to first token {first_at - began:.4f} s of {total:.4f} s in all")


def test_an_abandoned_stream_stops_within_a_step_and_the_next_request_is_served(tiny_base, monkeypatch):
    backend = LocalBackend("tiny", tiny_base, batch_size=8)
    cancelled = threading.Event()
    steps = Steps(backend, hold_at=2, release=cancelled)  # step 2 waits for the server to see the disconnect
    original_cancel = streaming.ReplyFeed.cancel

    def cancel(feed):
        if not cancelled.is_set():
            steps.log.append(f"cancelled after {steps.forwards} forwards")
            cancelled.set()
        original_cancel(feed)

    monkeypatch.setattr(streaming.ReplyFeed, "cancel", cancel)
    body = {"model": "tiny", "max_tokens": 200, "temperature": 0, "stream": True,
            "messages": [{"role": "user", "content": "what is the capital"}]}
    try:
        with serve_in_thread(backend) as server:
            with httpx.Client(timeout=60) as client:
                with client.stream("POST", f"{server.base_url}/chat/completions", json=body) as response:
                    assert response.status_code == 200
                    first = next(data_lines(response))
                    assert first["choices"][0]["delta"]["role"] == "assistant"
                steps.log.append("client closed")
            # the connection is gone; the next request must be served by the freed backend
            assert cancelled.wait(WAIT_S), steps.log
            with httpx.Client(timeout=60) as client:
                steps.log.append("next request")
                reply = client.post(f"{server.base_url}/chat/completions",
                                    json={**body, "stream": False, "max_tokens": 3})
            assert reply.status_code == 200 and reply.json()["usage"]["completion_tokens"] == 3
    finally:
        steps.remove()
    at_cancel = steps.log.index(next(e for e in steps.log if e.startswith("cancelled after")))
    before_next = steps.log.index("next request")
    after_disconnect = [e for e in steps.log[at_cancel:before_next] if e.startswith("forward")]
    assert len(after_disconnect) <= 1, steps.log  # generation stopped within one step
    assert steps.log[before_next + 1:] == ["forward 3", "forward 4", "forward 5"], steps.log


def test_a_sampled_stream_equals_the_sampled_reply_and_stops_when_abandoned(tiny_base, monkeypatch):
    """Sampling runs ``model.generate``: its streamer and stopping criterion do the same job."""
    backend = LocalBackend("tiny", tiny_base, batch_size=8)
    cancelled = threading.Event()
    steps = Steps(backend, hold_at=0, release=cancelled)
    original_cancel = streaming.ReplyFeed.cancel

    def cancel(feed):
        cancelled.set()
        original_cancel(feed)

    monkeypatch.setattr(streaming.ReplyFeed, "cancel", cancel)
    body = {"model": "tiny", "max_tokens": 8, "temperature": 0.9, "seed": 7,
            "messages": [{"role": "user", "content": "what is the capital"}]}
    try:
        with serve_in_thread(backend) as server, httpx.Client(timeout=60) as client:
            plain = client.post(f"{server.base_url}/chat/completions", json=body).json()
            with client.stream("POST", f"{server.base_url}/chat/completions",
                               json={**body, "stream": True}) as response:
                text = "".join(c["choices"][0]["delta"].get("content") or ""
                               for c in data_lines(response) if c["choices"])
            assert text == plain["choices"][0]["message"]["content"]
            cancelled.clear()
            steps.hold_at = steps.forwards + 2  # the abandoned request's second step waits for the disconnect
            with client.stream("POST", f"{server.base_url}/chat/completions",
                               json={**body, "stream": True, "max_tokens": 200}) as response:
                next(data_lines(response))
            held_at = steps.hold_at
        assert cancelled.is_set() and steps.released_in_time is True, steps.log
        assert steps.forwards <= held_at + 1, steps.log  # generate stopped within a step of the disconnect
    finally:
        steps.remove()

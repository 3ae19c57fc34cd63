"""A bounded load test of ``ft-harness serve`` on 127.0.0.1: throughput, latency, liveness.

``python -m bench.serve_load [--requests 800] [--concurrency 8] [--backend scripted|tiny]``
(or ``ft-harness bench serve_load``) starts the server on a free loopback port, sends a fixed
number of chat completions from ``concurrency`` keep-alive clients (stopping early at
``--max-seconds``), probes ``/health`` throughout, then sends ``--stream-requests`` streamed
chat completions the same way (time to the first content chunk and to ``[DONE]``), then times
trivial keep-alive requests one at a time; the clients run in a separate process. Only 127.0.0.1 is ever contacted; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import bench.common  # noqa: F401  (offline environment for the tiny model)
from harness.jsonio import strict_dumps

HOST = "127.0.0.1"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _ms(values: list[float]) -> dict[str, float]:
    return {"p50_ms": round(_percentile(values, 0.5) * 1000, 2),
            "p99_ms": round(_percentile(values, 0.99) * 1000, 2), "n": len(values)}


@contextmanager
def _backend(kind: str) -> Iterator[tuple[Any, str]]:
    """The backend to serve and the model id to ask."""
    if kind == "scripted":
        from harness.serve.scripted import ScriptedBackend

        yield ScriptedBackend("base"), "base"
        return
    import tempfile

    from harness.backends.hf.tiny import TinyModelConfig, build_tiny_base
    from harness.serve.backend import LocalBackend

    with tempfile.TemporaryDirectory(prefix="ft-bench-serve-") as root:
        corpus = Path(root) / "corpus.txt"
        words = ["the", "capital", "of", "france", "is", "paris", "spain", "madrid", "italy", "rome", "answer", "yes", "no"]
        corpus.write_text("\n".join(" ".join(words[(i * 7 + j) % len(words)] for j in range(10))
                                    for i in range(200)))
        base = build_tiny_base(Path(root) / "base", corpus=corpus,
                               config=TinyModelConfig(vocab_size=320, hidden_size=64,
                                                      intermediate_size=128, num_attention_heads=2,
                                                      num_key_value_heads=2, warmup_epochs=0))
        yield LocalBackend("tiny", base, batch_size=8), "tiny"


def _drive(requests: int, concurrency: int, max_seconds: float,
           one_request: Callable[[Any], None]) -> float:
    """Send ``requests`` requests from ``concurrency`` client threads (until the deadline); wall seconds."""
    import httpx

    lock = threading.Lock()
    remaining = [requests]
    deadline = time.monotonic() + max_seconds

    def worker() -> None:
        with httpx.Client(timeout=30) as client:
            while time.monotonic() < deadline:
                with lock:
                    if remaining[0] <= 0:
                        return
                    remaining[0] -= 1
                one_request(client)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - began


def _load(base_url: str, model: str, requests: int, concurrency: int, max_seconds: float,
          max_tokens: int) -> dict[str, Any]:
    """Plain chat completions under load, with the health endpoint probed throughout."""
    import httpx

    latencies: list[float] = []
    failures: list[int] = []
    health: list[float] = []
    lock = threading.Lock()
    done = threading.Event()
    deadline = time.monotonic() + max_seconds
    body = {"model": model, "max_tokens": max_tokens, "temperature": 0,
            "messages": [{"role": "user", "content": "what is the capital of france"}]}

    def one_request(client: Any) -> None:
        began = time.perf_counter()
        status = client.post(f"{base_url}/chat/completions", json=body).status_code
        elapsed = time.perf_counter() - began
        with lock:
            (latencies if status == 200 else failures).append(elapsed if status == 200 else status)

    def prober() -> None:
        root = base_url.removesuffix("/v1")
        with httpx.Client(timeout=10) as client:
            while not done.is_set() and time.monotonic() < deadline:
                began = time.perf_counter()
                client.get(f"{root}/health")
                health.append(time.perf_counter() - began)
                done.wait(0.01)

    probe = threading.Thread(target=prober)
    probe.start()
    wall = _drive(requests, concurrency, max_seconds, one_request)
    done.set()
    probe.join()
    return {"requests": len(latencies) + len(failures), "ok": len(latencies), "failed": len(failures),
            "concurrency": concurrency, "wall_s": round(wall, 2),
            "req_per_s": round(len(latencies) / wall, 1) if wall else None,
            "latency": _ms(latencies), "health_under_load": _ms(health)}


def _streamed(base_url: str, model: str, requests: int, concurrency: int, max_seconds: float,
              max_tokens: int) -> dict[str, Any]:
    """Streamed chat completions: time to the first content chunk and to the end of the stream."""
    import json

    first: list[float] = []
    whole: list[float] = []
    failures: list[int] = []
    lock = threading.Lock()
    body = {"model": model, "max_tokens": max_tokens, "temperature": 0, "stream": True,
            "messages": [{"role": "user", "content": "what is the capital of france"}]}

    def one_request(client: Any) -> None:
        began = time.perf_counter()
        first_at = None
        with client.stream("POST", f"{base_url}/chat/completions", json=body) as response:
            if response.status_code != 200:
                with lock:
                    failures.append(response.status_code)
                return
            for line in response.iter_lines():
                if first_at is None and line.startswith("data: {"):
                    chunk = json.loads(line.removeprefix("data: "))
                    if any(c["delta"].get("content") for c in chunk["choices"]):
                        first_at = time.perf_counter()
        ended = time.perf_counter()
        with lock:
            whole.append(ended - began)
            first.append((first_at or ended) - began)

    _drive(requests, concurrency, max_seconds, one_request)
    return {"requests": len(whole) + len(failures), "ok": len(whole), "failed": len(failures),
            "time_to_first_token": _ms(first), "latency": _ms(whole)}


def _keep_alive(base_url: str, n: int = 200) -> dict[str, float]:
    import httpx

    samples = []
    with httpx.Client(timeout=10) as client:
        client.get(f"{base_url}/models")
        for _ in range(n):
            began = time.perf_counter()
            client.get(f"{base_url}/models")
            samples.append(time.perf_counter() - began)
    return {"median_ms": round(statistics.median(samples) * 1000, 2), **_ms(samples)}


def run(requests: int = 800, concurrency: int = 8, backend: str = "scripted",
        max_seconds: float = 120.0, max_tokens: int = 8, stream_requests: int = 200) -> dict[str, Any]:
    """Serve on 127.0.0.1, load it, and return the measured figures."""
    from harness.serve.runtime import serve_in_thread

    # The clients run in their own process, so they do not compete for the server's GIL.
    clients = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    with (_backend(backend) as (model_backend, model), clients as pool,
          serve_in_thread(model_backend, host=HOST) as server):
        loaded = pool.submit(_load, server.base_url, model, requests, concurrency, max_seconds,
                             max_tokens).result(timeout=max_seconds + 60)
        streamed = pool.submit(_streamed, server.base_url, model, stream_requests, concurrency,
                               max_seconds, max_tokens).result(timeout=max_seconds + 60)
        keep_alive = pool.submit(_keep_alive, server.base_url).result(timeout=60)
    return {"backend": backend, **loaded, "streamed": streamed, "keep_alive_trivial": keep_alive}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.serve_load", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=800)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--backend", choices=("scripted", "tiny"), default="scripted")
    parser.add_argument("--max-seconds", type=float, default=120.0, help="stop sending after this")
    parser.add_argument("--max-tokens", type=int, default=8)
    parser.add_argument("--stream-requests", type=int, default=200, help="streamed chat completions")
    args = parser.parse_args(argv)
    if not (1 <= args.requests <= 100_000 and 1 <= args.concurrency <= 64 and args.max_seconds <= 600
            and 1 <= args.stream_requests <= 100_000):
        parser.error("--requests 1..100000, --stream-requests 1..100000, --concurrency 1..64, "
                     "--max-seconds <= 600")
    print(strict_dumps(run(args.requests, args.concurrency, args.backend, args.max_seconds,
                         args.max_tokens, args.stream_requests), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

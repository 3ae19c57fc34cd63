"""No API key or URL password in anything a failing run writes: terminal, JUnit XML, logs, reports,
cache. A suite's endpoints reject the key (401) or fail until retries run out (429 / 500); the run
uses ``--junitxml``, ``--log-level INFO``, ``-rA`` and long tracebacks with and without locals."""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import warm_python
from miniproject import PYTEST_OPTIONS

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures"
KEY_ENV = "FT_LEAK_TEST_KEY"

SPEC = """
[harness]
seed = 0

[suites.leak]
task = "classification"
labels = ["positive", "negative"]
train = "train.jsonl"
eval = "eval.jsonl"
decode = {{ max_new_tokens = 3 }}

[suites.leak.candidates.endpoint]
kind = "endpoint"
model = "deployed"
base_url = "{reject_plain}"
api_key_env = "{key_env}"

[suites.leak.candidates.endpoint_flaky]
kind = "endpoint"
model = "deployed"
base_url = "{flaky}"
api_key_env = "{key_env}"
verify = false
max_attempts = 3

[suites.leak.candidates.recorded]
kind = "recorded"
path = "recorded.jsonl"

# a judge whose endpoint answers only 429 / 500: retried, then a harness error naming it, never its key
[suites.leak.judges.flaky]
mode = "pairwise"
model = "deployed"
base_url = "{flaky}"
api_key_env = "{key_env}"
rubric = "Which answer is right?"
against = "reference"
max_attempts = 3

[suites.leak.candidates.openai]
kind = "openai"
model = "gpt-4o-mini"
base_url = "{reject}"
api_key_env = "{key_env}"

[suites.leak.candidates.openai_flaky]
kind = "openai"
model = "gpt-4o-mini"
base_url = "{flaky_plain}"
api_key_env = "{key_env}"
max_attempts = 3
"""

SUITE = '''
import logging
import os

import pytest

pytestmark = pytest.mark.ft_suite("leak")


@pytest.mark.parametrize("name", ["endpoint", "endpoint_flaky", "openai", "openai_flaky", "recorded"])
def test_candidate(name, evaluate):
    evaluate(name)


def test_passes_and_logs(candidate):
    logging.getLogger("harness.probe").info("a passing test's captured log")


def test_direct_client_call_shows_a_full_traceback():
    # Chained into an AssertionError, so pytest prints every harness frame (and, with -l, its
    # locals) whatever the plugin does with harness errors. The URL never sits in a local here.
    from harness.backends.http import ClientConfig, RetryPolicy
    from harness.backends.openai.client import ChatGenerator
    from harness.protocol import DecodeParams

    config = ClientConfig.resolve(base_url=os.environ["FT_LEAK_TEST_URL"], api_key_env="{key_env}",
                                  retry=RetryPolicy(max_attempts=2, initial_backoff_s=0))
    try:
        ChatGenerator(config, "deployed").generate_one([{{"role": "user", "content": "hi"}}], DecodeParams())
    except Exception as exc:
        raise AssertionError("the direct call failed") from exc
'''


class _Handler(BaseHTTPRequestHandler):
    """Answers every request with an error that echoes the caller's credentials back."""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        auth = self.headers.get("Authorization", "")
        key = auth.removeprefix("Bearer ")
        if self.server.mode == "reject":  # type: ignore[attr-defined]
            status, message = 401, f"Incorrect API key provided: {key}. Header was {auth!r}"
        else:
            self.server.calls += 1  # type: ignore[attr-defined]
            status = 429 if self.server.calls % 2 else 500  # type: ignore[attr-defined]
            message = f"overloaded; your request carried {auth} for {self.path}"
        body = json.dumps({"error": {"message": message, "type": "invalid_request_error",
                                     "param": None, "code": "invalid_api_key"}}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Retry-After", "0")
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_DELETE = _answer

    def log_message(self, format: str, *args) -> None:  # quiet
        pass


def _serve(mode: str) -> tuple[ThreadingHTTPServer, threading.Thread]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.mode, server.calls = mode, 0  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


@pytest.fixture
def servers() -> Iterator[dict[str, int]]:
    started = {mode: _serve(mode) for mode in ("reject", "flaky")}
    yield {mode: server.server_address[1] for mode, (server, _) in started.items()}
    for server, thread in started.values():
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _head(path: Path, n: int) -> str:
    return "\n".join(path.read_text(encoding="utf-8").splitlines()[:n]) + "\n"


def _project(root: Path, ports: dict[str, int], user: str, password: str) -> Path:
    root.mkdir(parents=True)
    (root / "train.jsonl").write_text(_head(FIXTURES / "sentiment" / "train.jsonl", 8), encoding="utf-8")
    (root / "eval.jsonl").write_text(_head(FIXTURES / "sentiment" / "eval.jsonl", 4), encoding="utf-8")
    # The key travels as a Bearer header to plain URLs (and is echoed back in the error body, as
    # OpenAI echoes part of a wrong key); to user:password URLs httpx sends Basic auth instead.
    urls = {mode: f"http://{user}:{password}@127.0.0.1:{port}/v1" for mode, port in ports.items()}
    urls.update({f"{mode}_plain": f"http://127.0.0.1:{port}/v1" for mode, port in ports.items()})
    (root / "recorded.jsonl").write_text("".join(json.dumps({"id": f"eval-{i}", "output": "positive"}) + "\n"
                                                  for i in range(1, 5)), encoding="utf-8")
    spec = root / "candidates.toml"
    spec.write_text(SPEC.format(key_env=KEY_ENV, **urls), encoding="utf-8")
    (root / "test_leak.py").write_text(SUITE.format(key_env=KEY_ENV), encoding="utf-8")
    return spec


def _run(project: Path, spec: Path, out: Path, key: str, url: str, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, KEY_ENV: key, "FT_LEAK_TEST_URL": url, "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1"}
    return warm_python.run(
        ["-m", "pytest", str(project / "test_leak.py"), *PYTEST_OPTIONS,
         "--rootdir", str(project), "--ft-spec", str(spec), "--ft-cache-dir", str(out / "cache"),
         "--ft-reports-dir", str(out / "reports"), "--junitxml", str(out / "junit.xml"),
         "-o", "junit_logging=all", "-rA", *extra],
        cwd=project, env=env, timeout=300, text=False)


@pytest.mark.slow
def test_no_key_or_password_in_anything_a_failing_run_writes(tmp_path, servers):
    token = secrets.token_hex(16)
    key = f"sk-test-{token}"
    user, password = "leakuser", secrets.token_hex(12)
    project = tmp_path / "project"
    spec = _project(project, servers, user, password)
    written: dict[str, bytes] = {}
    # INFO as in CI; then DEBUG (the SDK's request options, httpcore's trace) with locals shown.
    for name, options in (("long", ("--tb=long", "--log-level", "INFO")),
                          ("locals", ("--tb=long", "-l", "-vv", "--log-level", "DEBUG"))):
        out = tmp_path / name
        flaky = f"http://{user}:{password}@127.0.0.1:{servers['flaky']}/v1"
        done = _run(project, spec, out, key, flaky, *options)
        assert done.returncode == 1, done.stdout.decode()[-4000:] + done.stderr.decode()[-4000:]
        written[f"{name}: stdout"], written[f"{name}: stderr"] = done.stdout, done.stderr
        text = done.stdout.decode()
        # The failures still say what failed, where and why.
        assert "6 failed, 1 passed" in text, text[-4000:]
        assert "judge 'flaky' (deployed)" in text and "after 3 attempts" in text
        assert "the direct call failed" in text and "RemoteCallError: chat completion" in text
        assert f"127.0.0.1:{servers['reject']}/v1" in text and "401" in text
        assert f"127.0.0.1:{servers['flaky']}/v1" in text and "after 3 attempts" in text
        assert "HTTP Request:" in text  # httpx's INFO lines were captured (and redacted)
        assert (out / "junit.xml").is_file() and (out / "reports" / "results.json").is_file()
    for path in sorted(tmp_path.rglob("*")):
        if path.is_file() and path != spec:
            written[str(path.relative_to(tmp_path))] = path.read_bytes()
    assert any(name.endswith("junit.xml") for name in written)
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()  # httpx's Basic auth header
    needles = {"key": key, "key's random part": token, "password": password, "key prefix": token[:12],
               "password prefix": password[:12], "basic auth": basic}
    leaks = {what: sorted(name for name, data in written.items() if needle.encode() in data)
             for what, needle in needles.items()}
    assert not any(leaks.values()), leaks

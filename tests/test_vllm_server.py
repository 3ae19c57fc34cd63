"""The harness-started vLLM server, against a stand-in executable (tests/fakes/fake_vllm.py): a server
that fails to start is an error naming the cause from its log within a bounded wait, and no process
is left behind (also when the process that started it is terminated, interrupted or killed)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from harness.backends.vllm.server import VLLMServer, VLLMStartError, cause_from_log

FAKE = Path(__file__).resolve().parent / "fakes" / "fake_vllm.py"
EXE = f"{sys.executable} {FAKE}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is gone for our purpose
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _pids(path: Path) -> list[int]:
    for _ in range(50):
        if path.exists() and path.read_text().strip():
            return [int(p) for p in path.read_text().split()]
        time.sleep(0.1)
    raise AssertionError("the fake server never wrote its pids")


def _gone(pids: list[int], within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not any(_alive(p) for p in pids):
            return True
        time.sleep(0.1)
    return False


def _server(tmp_path: Path, mode: str, **kw) -> VLLMServer:
    return VLLMServer("/models/tiny", executable=EXE, log_path=tmp_path / "vllm.log",
                      env={"FAKE_VLLM_MODE": mode, "FAKE_VLLM_PIDS": str(tmp_path / "pids")}, **kw)


@pytest.mark.parametrize(("mode", "cause"), [("port", "the port is already in use"), ("model", "bad model path"),
                                             ("oom", "out of memory")])
def test_a_server_that_exits_is_an_error_naming_the_cause_from_its_log(tmp_path, mode, cause):
    server = _server(tmp_path, mode, startup_timeout_s=30)
    began = time.monotonic()
    with pytest.raises(VLLMStartError) as info:
        server.start()
    assert time.monotonic() - began < 15  # it fails as soon as the process exits, not at the timeout
    message = str(info.value)
    assert f"({cause})" in message and "exited with code 1" in message
    assert str(tmp_path / "vllm.log") in message  # where the whole log is
    assert {"port": "address already in use", "model": "config.json", "oom": "cache blocks"}[mode] in message
    assert _gone(_pids(tmp_path / "pids"))


def test_a_server_never_ready_is_stopped_after_the_bounded_wait(tmp_path):
    server = _server(tmp_path, "hang", startup_timeout_s=2)
    began = time.monotonic()
    with pytest.raises(VLLMStartError, match=r"not ready within 2 s"):
        server.start()
    assert time.monotonic() - began < 20
    assert _gone(_pids(tmp_path / "pids"))  # the server and its worker
    assert not server.running


def test_a_port_already_taken_is_refused_before_starting(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(VLLMStartError, match=rf"port {port} on 127.0.0.1 is already in use"):
            _server(tmp_path, "ready", port=port).start()
    assert not (tmp_path / "pids").exists()  # nothing was started


def test_a_missing_executable_says_how_to_install(tmp_path):
    server = VLLMServer("/models/tiny", executable=str(tmp_path / "no-vllm"), log_path=tmp_path / "log")
    with pytest.raises(VLLMStartError, match=r"pip install vllm.*FT_VLLM"):
        server.start()


def test_a_ready_server_is_reachable_and_stop_kills_its_process_group(tmp_path):
    import urllib.request

    server = _server(tmp_path, "ready", startup_timeout_s=30)
    with server:
        with urllib.request.urlopen(f"{server.base_url}/models", timeout=5) as reply:
            assert reply.status == 200
        pids = _pids(tmp_path / "pids")
        assert all(_alive(p) for p in pids)
    assert _gone(pids)


@pytest.mark.parametrize("how", ["sigterm", "interrupt", "exception", "sigkill"])
def test_no_process_is_left_when_the_starter_is_terminated_or_interrupted(tmp_path, how):
    # A shell runs a background job with SIGINT ignored and the child inherits that: restore Python's
    # handler so Ctrl-C raises KeyboardInterrupt however pytest was started.
    script = textwrap.dedent(f"""
        import os, signal, sys, time
        signal.signal(signal.SIGINT, signal.default_int_handler)
        from pathlib import Path
        from harness.backends.vllm.server import VLLMServer
        server = VLLMServer("/models/tiny", executable={EXE!r}, log_path=Path({str(tmp_path / 'log')!r}),
                            env={{"FAKE_VLLM_MODE": "ready", "FAKE_VLLM_PIDS": {str(tmp_path / 'pids')!r}}})
        server.start()
        print("ready", flush=True)
        if {how!r} == "exception":
            raise RuntimeError("the suite failed")
        time.sleep(120)
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "ready"
    pids = _pids(tmp_path / "pids")
    if how == "sigterm":
        child.send_signal(signal.SIGTERM)
    elif how == "interrupt":
        child.send_signal(signal.SIGINT)  # Ctrl-C: KeyboardInterrupt, then exit handlers
    elif how == "sigkill":
        child.kill()  # no handler runs: the watchdog stops the server
    child.wait(timeout=30)
    assert _gone(pids), f"left behind after {how}: {[p for p in pids if _alive(p)]}"


def test_causes_are_read_from_real_vllm_messages():
    assert cause_from_log("OSError: [Errno 98] Address already in use") == "the port is already in use"
    assert cause_from_log("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate") == "out of memory"
    assert cause_from_log("Repo id must be in the form 'repo_name'") == "bad model path"
    assert cause_from_log("INFO all good") is None

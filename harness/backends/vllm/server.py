"""A ``vllm serve`` process the harness starts, waits for and always stops.

The server runs in its own process group (``start_new_session``); stopping it sends SIGTERM to the
whole group, then SIGKILL after a grace period, so vLLM's engine workers go with it. Every started
server is stopped at interpreter exit (``atexit``) and on SIGTERM / SIGHUP (the handler stops the
servers, then defers to the previous handler); an interrupted suite (Ctrl-C) stops them on the way
out too. A harness killed outright (SIGKILL, the OOM killer) runs no handler, so a small watchdog
process, started with each server in a session of its own, stops the server's group the same way
once the process that started it is gone. A server that exits before it is ready, or is not ready within ``startup_timeout_s``, is a
:class:`VLLMStartError` naming the cause read from the tail of its log (port in use, bad model path,
out of memory) and the log file.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import HarnessError

#: The ``vllm`` executable: ``$FT_VLLM``, else ``vllm`` on the PATH (a candidate's ``executable`` wins).
EXECUTABLE_ENV = "FT_VLLM"
LOG_TAIL_LINES = 25

# (what the log says, the cause named in the error)
_CAUSES = (
    (("address already in use", "errno 98"), "the port is already in use"),
    (("out of memory", "outofmemory", "cannot allocate memory", "insufficient memory",
      "no available memory for the cache blocks", "not enough kv cache", "larger than the available kv cache"),
     "out of memory"),
    (("does not appear to have a file named config.json", "no such file or directory", "repo id must be",
      "not a valid model", "invalid repository id", "is not a local folder", "can't load the configuration",
      "couldn't connect to 'https://huggingface.co'", "we couldn't connect", "incorrect path_or_model_id"),
     "bad model path"),
    (("max_model_len", "max-model-len", "max_position_embeddings"), "--max-model-len is too large for the model"),
)


class VLLMStartError(HarnessError):
    """A vLLM server did not become ready: the message names the cause from its log."""


def vllm_executable(configured: str | None = None) -> str:
    """The ``vllm`` command to run: the configured one, ``$FT_VLLM``, or ``vllm``."""
    return configured or os.environ.get(EXECUTABLE_ENV) or "vllm"


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_in_use(host: str, port: int) -> bool:
    """Whether something already listens on ``host:port``."""
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a log file ("" if it cannot be read)."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def cause_from_log(text: str) -> str | None:
    """The failure a vLLM log shows (``None`` if none of the known ones)."""
    lowered = text.lower()
    for needles, cause in _CAUSES:
        if any(n in lowered for n in needles):
            return cause
    return None


@dataclass
class VLLMServer:
    """One ``vllm serve MODEL`` process on 127.0.0.1, ``args`` after the model."""

    model: str
    args: Sequence[str] = ()
    executable: str | None = None
    host: str = "127.0.0.1"
    port: int | None = None
    startup_timeout_s: float = 300.0
    log_path: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = field(default=None, repr=False)
    watchdog: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def command(self) -> list[str]:
        """The command line the server is started with."""
        return [*shlex.split(vllm_executable(self.executable)), "serve", self.model, "--host", self.host,
                "--port", str(self.port), *self.args]

    def start(self) -> VLLMServer:
        """Start the server and wait until it answers ``GET /v1/models`` (or fail with the cause)."""
        if self.port is None:
            self.port = free_port()
        elif port_in_use(self.host, self.port):
            raise VLLMStartError(f"vLLM server for {self.model}: port {self.port} on {self.host} is already in use "
                                 "(another server listens there); choose another `port` or leave it out")
        if self.log_path is None:
            import tempfile

            self.log_path = Path(tempfile.mkstemp(prefix="ft-vllm-", suffix=".log")[1])
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env}
        with open(self.log_path, "wb") as log:
            try:
                self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                                stdin=subprocess.DEVNULL, env=env, start_new_session=True)
            except OSError as exc:
                raise VLLMStartError(f"cannot run {vllm_executable(self.executable)!r} ({exc.strerror}); install "
                                     f"vLLM (`pip install vllm`; on CPU see bench/setup_vllm.sh) and set "
                                     f"${EXECUTABLE_ENV} to its `vllm` executable") from None
        self.watchdog = subprocess.Popen([sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(self.process.pid)],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, start_new_session=True)
        _register(self)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        url = f"http://{self.host}:{self.port}/v1/models"
        while True:
            code = self.process.poll() if self.process else None
            if code is not None:
                raise self._failure(f"exited with code {code} before it was ready")
            try:
                with urllib.request.urlopen(url, timeout=2.0) as reply:
                    if reply.status == 200:
                        return
            except (urllib.error.URLError, OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise self._failure(f"was not ready within {self.startup_timeout_s:g} s (no answer on {url})")
            time.sleep(0.5)

    def _failure(self, what: str) -> VLLMStartError:
        time.sleep(0.2)  # let the last lines reach the log
        tail = log_tail(self.log_path) if self.log_path else ""
        cause = cause_from_log(tail)
        named = f" ({cause})" if cause else ""
        return VLLMStartError(f"vLLM server for {self.model}{named} {what}; command: {shlex.join(self.command())}; "
                              f"last lines of its log {self.log_path}:\n{tail or '(empty)'}")

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, grace_s: float = 10.0) -> None:
        """Stop the server's whole process group: SIGTERM, then SIGKILL after ``grace_s``."""
        process, self.process = self.process, None
        watchdog, self.watchdog = self.watchdog, None
        _unregister(self)
        if watchdog is not None:
            watchdog.kill()
            watchdog.wait()
        if process is None:
            return
        for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(process.pid, sig)
            except (ProcessLookupError, PermissionError):
                break
            try:
                process.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        _reap_group(process.pid)

    def __enter__(self) -> VLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# run as ``python -c _WATCHDOG <harness pid> <server pgid>``: while the harness lives and the
# server's group exists, wait; when the harness is gone, SIGTERM the group, SIGKILL it 10 s later
_WATCHDOG = """
import os, signal, sys, time
parent, pgid = int(sys.argv[1]), int(sys.argv[2])
signal.signal(signal.SIGINT, signal.SIG_IGN)
def group_alive():
    try:
        os.killpg(pgid, 0)
        return True
    except OSError:
        return False
while os.getppid() == parent and group_alive():
    time.sleep(0.5)
for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 0.0)):
    if not group_alive():
        break
    os.killpg(pgid, sig)
    deadline = time.monotonic() + grace
    while group_alive() and time.monotonic() < deadline:
        time.sleep(0.1)
"""


def _reap_group(pgid: int) -> None:
    """SIGKILL whatever is left in the group (engine workers that outlived the API server)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


# -- every started server is stopped on the way out -------------------------------------------
_LIVE: dict[int, VLLMServer] = {}
_LOCK = threading.Lock()
_HANDLERS_INSTALLED = False


def _register(server: VLLMServer) -> None:
    with _LOCK:
        _LIVE[id(server)] = server
    _install_handlers()


def _unregister(server: VLLMServer) -> None:
    with _LOCK:
        _LIVE.pop(id(server), None)


def stop_all() -> None:
    """Stop every server this process started and has not stopped."""
    with _LOCK:
        servers = list(_LIVE.values())
    for server in servers:
        server.stop(grace_s=5.0)


def _on_signal(signum: int, frame: object) -> None:
    stop_all()
    previous = _PREVIOUS.get(signum)
    if callable(previous):
        previous(signum, frame)
    else:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


_PREVIOUS: dict[int, object] = {}


def _install_handlers() -> None:
    global _HANDLERS_INSTALLED
    if _HANDLERS_INSTALLED:
        return
    _HANDLERS_INSTALLED = True
    atexit.register(stop_all)
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGTERM, signal.SIGHUP):
        previous = signal.getsignal(signum)
        if previous in (signal.SIG_IGN,):
            continue
        _PREVIOUS[signum] = previous
        signal.signal(signum, _on_signal)

"""``python …`` for the tests, forked from a warm interpreter: as a call (:func:`run`), as a process
(:class:`Popen`) and as an executable other launchers start (:func:`executable`: torchrun's workers,
pytest-xdist's workers).

Each end-to-end test runs the plugin or the CLI as a user does, in its own process; a fresh
interpreter spends about 6 CPU seconds importing torch, transformers, peft (and bitsandbytes), trl
and the rest before it does anything, which over the suite's dozens of such runs was most of its time.
Here the process is forked from a server that imported those libraries and the harness once (per
test run when the controller shares it with its workers, :func:`share`; else per process): the child changes to the caller's directory, takes its environment as its whole environment
and its standard streams as its own, runs the module, script or ``-c`` code as the interpreter would
(``sys.argv``, ``sys.path[0]``), runs the ``atexit`` handlers and exits with the code ``python`` would
have. It is still a separate process (own pid, signals, files, exit code); several run at once.

What a fork cannot show stays on a real ``subprocess`` in the tests that need it: anything read
at import time (the offline settings of an outside project, which modules an import defers),
a launcher's own start-up (torchrun itself and pytest-xdist's controller stay real processes).
"""

from __future__ import annotations

import atexit
import json
import os
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

#: what the server imports before it forks: the libraries every harness run loads
WARM_IMPORTS = ("torch", "numpy", "scipy.stats", "sklearn.metrics", "pandas", "datasets", "transformers",
                "transformers.models.llama.modeling_llama", "transformers.models.bert.modeling_bert", "peft",
                "trl", "accelerate", "matplotlib.pyplot", "jinja2", "httpx", "pytest")
#: packages the server imports whole (every module but ``__main__``): the harness itself, so a child
#: neither compiles its modules (a test run may not write bytecode) nor imports them again
WARM_PACKAGES = ("harness",)


def run(args: Sequence[str], *, cwd: str | os.PathLike | None = None, env: Mapping[str, str] | None = None,
        timeout: float | None = None, text: bool = True, default_sigint: bool = False) -> subprocess.CompletedProcess:
    """``subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=text,
    timeout=timeout)``, the process forked from the warm server. ``default_sigint``: Ctrl-C raises
    KeyboardInterrupt in the child, as in an interpreter started from a terminal (a test run started
    as a background job hands its children SIGINT ignored)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, open(os.devnull, "rb") as null:
        process = Popen(args, cwd=cwd, env=env, stdin=null.fileno(), stdout=out.fileno(), stderr=err.fileno(),
                        default_sigint=default_sigint)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise subprocess.TimeoutExpired(process.args, timeout or 0, output=_read(out, text),
                                            stderr=_read(err, text)) from None
        return subprocess.CompletedProcess(process.args, process.returncode, _read(out, text), _read(err, text))


class Popen:
    """A warm child as ``subprocess.Popen([sys.executable, *args], stdin=, stdout=, stderr=)`` with file
    descriptors (stdin ``/dev/null`` unless given): ``pid`` is the child's own, ``kill()`` and
    ``send_signal()`` reach it directly, ``wait()`` / ``poll()`` give its exit code (−signum when a
    signal ended it)."""

    def __init__(self, args: Sequence[str], *, cwd: str | os.PathLike | None = None,
                 env: Mapping[str, str] | None = None, stdin: int | None = None, stdout: int | None = None,
                 stderr: int | None = None, default_sigint: bool = False) -> None:
        self.args = [sys.executable, *args]
        request = {"args": list(args), "cwd": str(cwd or os.getcwd()),
                   "env": dict(os.environ if env is None else env),
                   "sigint": "default" if default_sigint else "inherit"}
        with open(os.devnull, "rb") as null:  # no stdin unless given (a test worker's own may be a channel)
            streams = [null.fileno() if stdin is None else stdin, 1 if stdout is None else stdout,
                       2 if stderr is None else stderr]
            self._socket = _connect(_server().socket_path, request, streams)
        self._pending = b""
        self.pid: int = self._answer(None)["pid"]
        self.returncode: int | None = None

    def _answer(self, timeout: float | None) -> dict:
        """The server's next answer line (``TimeoutExpired`` if none comes within ``timeout`` seconds)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._pending:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not select.select([self._socket], [], [], left)[0]:
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
            data = self._socket.recv(4096)
            if not data:
                raise RuntimeError("the warm Python server went away")
            self._pending += data
        line, self._pending = self._pending.split(b"\n", 1)
        return json.loads(line)

    def wait(self, timeout: float | None = None) -> int:
        """The exit code, once the child has ended (``TimeoutExpired`` after ``timeout`` seconds)."""
        if self.returncode is None:
            self.returncode = self._answer(timeout)["returncode"]
            self._socket.close()
        return self.returncode

    def poll(self) -> int | None:
        """The exit code if the child has ended, else None."""
        try:
            return self.wait(0)
        except subprocess.TimeoutExpired:
            return None

    def send_signal(self, signum: int) -> None:
        """Send ``signum`` to the child (nothing once it has been waited for)."""
        if self.returncode is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        """SIGKILL the child."""
        self.send_signal(signal.SIGKILL)


def executable() -> str:
    """The path of an executable that behaves as ``python`` (``-m``, ``-c``, a script; ``-u``, ``-B``)
    but forks its interpreter from the warm server: it passes its arguments, directory, environment and
    standard streams, forwards the signals it receives and exits as the child did; killed, it takes
    the child with it. For launchers that start ``python`` themselves (``torchrun --no-python``,
    ``--tx popen//python=``)."""
    return str(_server().executable)


def share() -> str:
    """Start this process's server without waiting for its imports and hand it to the processes
    started from here on (through the environment): a test run's controller calls this, then its
    pytest-xdist workers start as forks of the server (through :func:`executable`) and fork their own
    children from the same one. Returns the executable."""
    server = _server(wait=False)
    os.environ[_SHARED] = json.dumps({"socket": server.socket_path, "executable": str(server.executable)})
    return str(server.executable)


def _connect(path: str, request: dict, streams: list[int]) -> socket.socket:
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.connect(path)
    payload = (json.dumps(request) + "\n").encode()
    sent = socket.send_fds(connection, [payload], streams)
    connection.sendall(payload[sent:])
    return connection


def _read(file, text: bool) -> str | bytes:
    file.seek(0)
    data = file.read()
    return data.decode("utf-8", errors="replace") if text else data


#: the environment variable through which :func:`share` hands a server to the processes started later
_SHARED = "FT_TEST_WARM_PYTHON"


class _Server:
    """The warm interpreter: a Unix socket where each connection asks for one child. The socket
    listens before the imports start, so early connections wait in its backlog."""

    def __init__(self, *, wait: bool = True) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="warm-python-"))
        if len(str(self.folder / "socket")) > 100:  # a Unix socket's path holds at most 107 bytes
            shutil.rmtree(self.folder)
            self.folder = Path(tempfile.mkdtemp(prefix="warm-python-", dir="/tmp"))
        self.socket_path = str(self.folder / "socket")
        launcher = self.folder / "launcher.py"
        launcher.write_text(_LAUNCHER.replace("SOCKET_PATH", repr(self.socket_path)), encoding="utf-8")
        # a shell script, not a "#!python" line: a shebang breaks on a long or spaced interpreter path
        self.executable = self.folder / "python"
        self.executable.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -I {shlex.quote(str(launcher))} "$@"\n',
                                   encoding="utf-8")
        self.executable.chmod(0o755)
        self.process = subprocess.Popen([sys.executable, "-c", _SERVER, self.socket_path, json.dumps(WARM_IMPORTS),
                                         json.dumps(WARM_PACKAGES)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                        cwd=Path(__file__).resolve().parent.parent)
        listening = self.process.stdout.readline()
        if listening.strip() != "listening":
            raise RuntimeError(f"the warm Python server did not start: {listening!r}")
        if wait:
            ready = self.process.stdout.readline()
            if ready.strip() != "ready":
                raise RuntimeError(f"the warm Python server failed in its imports: {ready!r}")

    def alive(self) -> bool:
        return self.process.poll() is None

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            self.process.wait(timeout=30)
        shutil.rmtree(self.folder, ignore_errors=True)


class _SharedServer:
    """A server another process started and shared (:func:`share`): used, never stopped, from here."""

    def __init__(self, shared: str) -> None:
        described = json.loads(shared)
        self.socket_path, self.executable = described["socket"], Path(described["executable"])

    def alive(self) -> bool:
        return Path(self.socket_path).exists()

    def close(self) -> None:
        pass


_SERVERS: list[_Server | _SharedServer] = []


def _server(*, wait: bool = True) -> _Server | _SharedServer:
    if not _SERVERS or not _SERVERS[0].alive():
        if not _SERVERS:
            atexit.register(close)
        shared = os.environ.get(_SHARED)
        _SERVERS[:] = [_SharedServer(shared) if shared and Path(json.loads(shared)["socket"]).exists()
                       else _Server(wait=wait)]
    return _SERVERS[0]


def close() -> None:
    """Stop the server this process started (at exit: it ends when its control pipe closes)."""
    for server in _SERVERS:
        server.close()
    _SERVERS.clear()


# The server: listen, import, freeze what was imported (children share those pages untouched), then
# accept connections until its control pipe (stdin) closes. Each connection carries one request and the
# child's three standard streams; the server forks a handler for it, which forks the child, answers
# with the child's pid, forwards signals the client asks for, kills the child if the client goes away,
# and answers with the exit status. The server's own stdout is pointed at its stderr so nothing else
# can land in the ready line.
_SERVER = r'''
import gc, importlib, json, os, select, signal, socket, sys
answers = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)
socket_path = sys.argv[1]
listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
listener.bind(socket_path)
listener.listen(64)
answers.write("listening\n"); answers.flush()
for name in json.loads(sys.argv[2]):
    importlib.import_module(name)
import pkgutil
for package in json.loads(sys.argv[3]):
    for module in pkgutil.walk_packages(importlib.import_module(package).__path__, package + "."):
        if not module.name.endswith(".__main__"):
            importlib.import_module(module.name)
# a pytest plugin these imports pulled in (anyio, by huggingface_hub; the harness's own) would make
# every child's pytest warn that it is "already imported so cannot be rewritten", where a fresh
# interpreter imports it after pytest starts: its docstring opts it out of rewriting, as the children
# need nothing rewritten (the harness's asserts only narrow types)
from importlib.metadata import entry_points
for point in entry_points(group="pytest11"):
    module = sys.modules.get(point.module.split(".")[0])
    if module is not None and point.module.split(".")[0] not in ("pytest", "_pytest"):
        module.__doc__ = (module.__doc__ or "") + "\nPYTEST_DONT_REWRITE"
gc.collect()
gc.freeze()
answers.write("ready\n"); answers.flush()
answers.close()


def child(request, streams):
    import atexit, io, runpy, traceback
    if request["sigint"] == "default":
        signal.signal(signal.SIGINT, signal.default_int_handler)
    elif request["sigint"] == "ignore":
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    for target, fd in enumerate(streams):
        os.dup2(fd, target)
    for fd in streams:
        if fd > 2 and fd not in streams[streams.index(fd) + 1:]:
            os.close(fd)
    args = list(request["args"])
    while args and args[0] in ("-u", "-B", "-I", "-E", "-s", "-S"):
        flag = args.pop(0)
        if flag == "-u":  # unbuffered standard streams
            sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), write_through=True)
            sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), write_through=True)
        elif flag == "-B":
            sys.dont_write_bytecode = True
    code = 0
    try:
        if args[0] == "-m":
            sys.argv = [args[1], *args[2:]]
            sys.path[0] = os.getcwd()
            runpy.run_module(args[1], run_name="__main__", alter_sys=True)
        elif args[0] == "-c":
            sys.argv = ["-c", *args[2:]]
            sys.path[0] = ""
            exec(compile(args[1], "<string>", "exec"), {"__name__": "__main__"})
        else:
            sys.argv = list(args)
            sys.path[0] = os.path.dirname(os.path.abspath(args[0]))
            runpy.run_path(args[0], run_name="__main__")
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if not isinstance(exc.code, int) and exc.code is not None:
            print(exc.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
        code = 1
    try:
        import threading
        threading._shutdown()  # as the interpreter does at exit: wait for non-daemon threads
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(code)


def handle(connection, request, streams):
    pid = os.fork()
    if pid == 0:
        connection.close()
        child(request, streams)
    for fd in set(streams):
        os.close(fd)
    connection.sendall(json.dumps({"pid": pid}).encode() + b"\n")
    ended = os.pidfd_open(pid)
    pending = b""
    while True:
        ready, _, _ = select.select([ended, connection], [], [])
        if ended in ready:
            break
        data = connection.recv(4096)
        if not data:  # the client went away: its child goes too
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os._exit(0)
        pending += data
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            try:
                os.kill(pid, json.loads(line)["signal"])
            except ProcessLookupError:
                pass
    _, status = os.waitpid(pid, 0)
    try:
        connection.sendall(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}).encode() + b"\n")
    except OSError:
        pass
    os._exit(0)


while True:
    ready, _, _ = select.select([listener, 0], [], [])
    if 0 in ready and not os.read(0, 4096):
        break
    if listener not in ready:
        continue
    connection, _ = listener.accept()
    message, streams, _, _ = socket.recv_fds(connection, 1 << 16, 8)
    while not message.endswith(b"\n"):
        more = connection.recv(1 << 16)
        if not more:
            break
        message += more
    if message.endswith(b"\n") and len(streams) == 3 and os.fork() == 0:
        listener.close()
        handle(connection, json.loads(message), streams)
    connection.close()
    for fd in streams:
        os.close(fd)
    while True:  # reap the handlers that have finished
        try:
            finished, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if not finished:
            break
'''

# The executable: a short-lived client that hands its arguments, environment and streams to the server
# and stands in for the child (signals forwarded, the child's exit status as its own).
_LAUNCHER = r'''import json, os, signal, socket, sys
connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    connection.connect(SOCKET_PATH)
except OSError as exc:
    sys.exit(f"the tests' warm Python server at {SOCKET_PATH} is not running ({exc}); its own output above says "
             "why (FT_TEST_COLD_WORKERS=1 starts pytest-xdist's workers as fresh interpreters)")
sigint = "ignore" if signal.getsignal(signal.SIGINT) is signal.SIG_IGN else "default"
request = {"args": sys.argv[1:], "cwd": os.getcwd(), "env": dict(os.environ), "sigint": sigint}
payload = (json.dumps(request) + "\n").encode()
sent = socket.send_fds(connection, [payload], [0, 1, 2])
connection.sendall(payload[sent:])
answers = connection.makefile("rb")
json.loads(answers.readline())


def forward(signum, frame):
    connection.sendall(json.dumps({"signal": signum}).encode() + b"\n")


for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
    if not (signum == signal.SIGINT and sigint == "ignore"):
        signal.signal(signum, forward)
line = answers.readline()
code = json.loads(line)["returncode"] if line else 1
if code < 0:
    signal.signal(-code, signal.SIG_DFL)
    os.kill(os.getpid(), -code)
os._exit(code)
'''

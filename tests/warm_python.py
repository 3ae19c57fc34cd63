"""``python -m pytest …`` / ``python -m harness …`` for the tests, forked from a warm interpreter.

Each end-to-end test runs the plugin or the CLI as a user does, in its own process; a fresh
interpreter spends about 6 CPU seconds importing torch, transformers, peft (and bitsandbytes), trl
and the rest before it does anything, which over the suite's dozens of such runs was most of its time.
:func:`run` has the signature of ``subprocess.run([sys.executable, *args], capture_output=True,
text=True, ...)`` and the same result, but the process is forked from a server that imported
those libraries once (per pytest-xdist worker): the child changes to ``cwd``, takes ``env`` as its
whole environment, gets its own standard streams, runs the module, script or ``-c`` code as the
interpreter would (``sys.argv``, ``sys.path[0]``), runs the ``atexit`` handlers and exits with the
code ``python`` would have. It is still a separate process (own pid, signals, files, exit code).

What a fork cannot show stays on a real ``subprocess`` in the tests that need it: anything read
at import time (the offline settings of an outside project, which modules an import defers), Ctrl-C
and the fast exit, several processes at once (torchrun, xdist, a killed and resumed run).
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

#: what the server imports before it forks: the libraries every harness run loads
WARM_IMPORTS = ("torch", "numpy", "scipy.stats", "sklearn.metrics", "pandas", "datasets", "transformers",
                "transformers.models.llama.modeling_llama", "transformers.models.bert.modeling_bert", "peft",
                "trl", "accelerate", "matplotlib.pyplot", "jinja2", "httpx", "pytest")


def run(args: Sequence[str], *, cwd: str | os.PathLike | None = None, env: Mapping[str, str] | None = None,
        timeout: float | None = None, text: bool = True, default_sigint: bool = False) -> subprocess.CompletedProcess:
    """``subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=text,
    timeout=timeout)``, the process forked from the warm server. ``default_sigint``: Ctrl-C raises
    KeyboardInterrupt in the child, as in an interpreter started from a terminal (a test run started
    as a background job hands its children SIGINT ignored)."""
    return _server().run(list(args), cwd=str(cwd or os.getcwd()), env=dict(os.environ if env is None else env),
                         timeout=timeout, text=text, default_sigint=default_sigint)


class _Server:
    """The warm interpreter: one request at a time over a pipe, each answered with the child's pid
    and then its exit status."""

    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", _SERVER, json.dumps(WARM_IMPORTS)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                        cwd=Path(__file__).resolve().parent.parent)
        self.lock = threading.Lock()
        ready = self.process.stdout.readline()
        if ready.strip() != "ready":
            raise RuntimeError(f"the warm Python server did not start: {ready!r}")

    def run(self, args: list[str], *, cwd: str, env: dict[str, str], timeout: float | None, text: bool,
            default_sigint: bool):
        with self.lock, tempfile.TemporaryDirectory(prefix="warm-python-") as scratch:
            out, err = Path(scratch) / "stdout", Path(scratch) / "stderr"
            request = {"args": args, "cwd": cwd, "env": env, "stdout": str(out), "stderr": str(err),
                       "default_sigint": default_sigint}
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
            pid = json.loads(self.process.stdout.readline())["pid"]
            answer: list[str] = []
            reader = threading.Thread(target=lambda: answer.append(self.process.stdout.readline()), daemon=True)
            reader.start()
            reader.join(timeout)
            if reader.is_alive():
                os.kill(pid, signal.SIGKILL)
                reader.join()
                raise subprocess.TimeoutExpired([sys.executable, *args], timeout or 0,
                                                output=_read(out, text), stderr=_read(err, text))
            returncode = json.loads(answer[0])["returncode"]
            return subprocess.CompletedProcess([sys.executable, *args], returncode, _read(out, text), _read(err, text))

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            self.process.wait(timeout=30)


def _read(path: Path, text: bool) -> str | bytes:
    data = path.read_bytes() if path.exists() else b""
    return data.decode("utf-8", errors="replace") if text else data


_SERVERS: list[_Server] = []


def _server() -> _Server:
    if not _SERVERS or _SERVERS[0].process.poll() is not None:
        if not _SERVERS:
            atexit.register(close)
        _SERVERS[:] = [_Server()]
    return _SERVERS[0]


def close() -> None:
    """Stop this process's server (at exit: it ends when its request pipe closes)."""
    for server in _SERVERS:
        server.close()
    _SERVERS.clear()


# The server: import, freeze what was imported (children share those pages untouched), then fork one
# child per request. Requests come on stdin, answers go out on a duplicate of stdout; the server's own
# stdout is pointed at its stderr so nothing else can land in the answers.
_SERVER = r'''
import gc, importlib, json, os, sys
answers = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)
for name in json.loads(sys.argv[1]):
    importlib.import_module(name)
# a pytest plugin these imports pulled in (anyio, by huggingface_hub) would make every child's pytest
# warn that it is "already imported so cannot be rewritten", where a fresh interpreter imports it
# after pytest starts: its docstring opts it out of rewriting, as the children need nothing rewritten
from importlib.metadata import entry_points
for point in entry_points(group="pytest11"):
    module = sys.modules.get(point.module.split(".")[0])
    if module is not None and point.module.split(".")[0] not in ("pytest", "_pytest"):
        module.__doc__ = (module.__doc__ or "") + "\nPYTEST_DONT_REWRITE"
gc.collect()
gc.freeze()
answers.write("ready\n"); answers.flush()


def child(request):
    import atexit, runpy, signal, traceback
    if request["default_sigint"]:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
        os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), fd)
    args = request["args"]
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


for line in sys.stdin:
    request = json.loads(line)
    pid = os.fork()
    if pid == 0:
        answers.close()
        child(request)
    answers.write(json.dumps({"pid": pid}) + "\n"); answers.flush()
    _, status = os.waitpid(pid, 0)
    answers.write(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}) + "\n"); answers.flush()
'''

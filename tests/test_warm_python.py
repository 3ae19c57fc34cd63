"""The tests' warm interpreter behaves as ``python`` does for what the end-to-end tests rely on:
output, exit codes, directory and environment, signals, several children at once, and a launcher
that stands in for its child."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import warm_python


def test_a_run_gives_the_streams_and_exit_code_of_the_code_it_ran(tmp_path):
    code = "import os, sys; print(os.getcwd(), os.environ['PROBE']); print('oops', file=sys.stderr); sys.exit(3)"
    done = warm_python.run(["-c", code], cwd=tmp_path, env={"PROBE": "here"})
    assert (done.returncode, done.stdout, done.stderr) == (3, f"{tmp_path} here\n", "oops\n")
    assert done.args == [sys.executable, "-c", code]


def test_a_killed_child_reports_the_signal_and_a_timeout_kills_it(tmp_path):
    process = warm_python.Popen(["-c", "import time; time.sleep(60)"])
    assert process.poll() is None
    process.kill()
    assert process.wait(10) == -signal.SIGKILL
    try:
        warm_python.run(["-c", "print('started', flush=True); import time; time.sleep(60)"], timeout=2)
    except subprocess.TimeoutExpired as expired:
        assert expired.output == "started\n"
    else:
        raise AssertionError("no timeout")


def test_children_run_at_the_same_time(tmp_path):
    # each waits for the file the other writes: one at a time, neither would finish
    code = ("import pathlib, sys, time; me, other = map(pathlib.Path, sys.argv[1:]); me.touch()\n"
            "deadline = time.monotonic() + 20\n"
            "while not other.exists():\n    assert time.monotonic() < deadline; time.sleep(0.01)")
    a, b = tmp_path / "a", tmp_path / "b"
    first = warm_python.Popen(["-c", code, str(a), str(b)])
    second = warm_python.Popen(["-c", code, str(b), str(a)])
    assert (first.wait(30), second.wait(30)) == (0, 0)


def test_the_executable_stands_in_for_its_child(tmp_path):
    script = tmp_path / "script.py"
    script.write_text("import sys; print(sys.argv[1:], sys.stdin.read()); sys.exit(4)\n", encoding="utf-8")
    done = subprocess.run([warm_python.executable(), "-u", str(script), "x"], input="fed", capture_output=True,
                          text=True, cwd=tmp_path, timeout=30)
    assert (done.returncode, done.stdout) == (4, "['x'] fed\n")

    pid_file = tmp_path / "pid"
    code = "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(60)"
    for signum in (signal.SIGTERM, signal.SIGKILL):  # a signal is forwarded; killed, it takes the child along
        pid_file.unlink(missing_ok=True)
        launcher = subprocess.Popen([warm_python.executable(), "-c", code, str(pid_file)])
        deadline = time.monotonic() + 20
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        child = int(pid_file.read_text())
        assert child != launcher.pid
        launcher.send_signal(signum)
        assert launcher.wait(20) == -signum
        deadline = time.monotonic() + 20
        while _running(child):
            assert time.monotonic() < deadline, f"child {child} outlived its launcher"
            time.sleep(0.01)


def _running(pid: int) -> bool:
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False

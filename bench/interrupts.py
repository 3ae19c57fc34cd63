"""Ctrl-C → exit seconds: SIGINT at random points of the end of a ``--ft-update-baseline`` run.

A mini project (a tiny base and a LoRA, 40 eval rows) is run once complete; then each chosen point
(the n-th call of the end-of-run steps: report rendering, outputs, baseline write, publishing,
``os.replace``, PNG saving) gets two interrupted runs side by side, one as shipped (the fast exit)
and one whose conftest turns the fast exit off (pytest's and the interpreter's full teardown). Each
run records when the signal was sent and the CPU time it had used by then; the seconds are from
then to the process's end (wall, and CPU user + sys, which other jobs on the machine do not
inflate), and to the short "interrupted" report's ``index.md`` being written. ``FT_BENCH_INTERRUPT_POINTS`` (default 10)
sets how many points.
"""

from __future__ import annotations

import os
import random
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import REPO
from harness.jsonio import strict_dumps

SPEC = """
[harness]
corpus = "corpus.txt"
seed = 0
batch_size = 32
torch_threads = 1
tiny = { hidden_size = 32, intermediate_size = 64, vocab_size = 400, warmup_epochs = 0.2 }

[suites.mini]
task = "classification"
labels = ["positive", "negative"]
train = "train.jsonl"
validation = "validation.jsonl"
eval = "eval.jsonl"
decode = { max_new_tokens = 3 }
gate = { alpha = 0.05, inconclusive = "pass", metrics = { accuracy = { tolerance = 0.02 } } }

[suites.mini.candidates.base]
kind = "base"

[suites.mini.candidates.lora]
kind = "lora"
params = { n_epochs = 1, batch_size = 16, learning_rate = 3e-3, r = 4, alpha = 8 }
"""

SUITE = '''
import pytest

pytestmark = pytest.mark.ft_suite("mini")


@pytest.mark.parametrize("name", ["base", "lora"])
def test_gate(name, evaluate, gate):
    gate(evaluate(name))
'''

# Counts the calls of the end-of-run steps from session finish on; SIGINT at call FT_BENCH_FIRE
# (the time it was sent goes to FT_BENCH_STAMP); FT_BENCH_COUNT gets the total of a complete run.
CONFTEST = '''
import importlib, os, signal, time
from pathlib import Path

import pytest

FIRE = int(os.environ.get("FT_BENCH_FIRE", "0"))
TARGETS = (("os", "replace"), ("harness.session", "write_reports"), ("harness.session", "write_outputs"),
           ("harness.session", "update_baseline"), ("harness.session", "publish"),
           ("harness.session", "staging_dir"), ("harness.report.publish", "_replace_previous"),
           ("harness.session", "write_interrupted"), ("matplotlib.figure", "Figure.savefig"))
calls = 0
counting = False

if os.environ.get("FT_BENCH_NO_FAST_EXIT"):  # the comparison: leave through the normal teardown
    import harness.interrupts
    harness.interrupts.exit_now = lambda code: None


def _wrap(function):
    def counted(*args, **kwargs):
        global calls
        if counting:
            calls += 1
            if calls == FIRE:
                Path(os.environ["FT_BENCH_STAMP"]).write_text(f"{time.time()!r} {time.process_time()!r}")
                signal.raise_signal(signal.SIGINT)
        return function(*args, **kwargs)
    return counted


for module_name, attribute in TARGETS:
    owner = importlib.import_module(module_name)
    *path, name = attribute.split(".")
    for part in path:
        owner = getattr(owner, part)
    setattr(owner, name, _wrap(getattr(owner, name)))


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_sessionfinish(session):
    global counting
    counting = True
    yield
    counting = False
    if os.environ.get("FT_BENCH_COUNT"):
        Path(os.environ["FT_BENCH_COUNT"]).write_text(str(calls))
'''


def _lines(path: Path, n: int) -> str:
    return "\n".join(path.read_text(encoding="utf-8").splitlines()[:n]) + "\n"


def make_project(root: Path) -> Path:
    """The mini project: spec, data subsets of the fixtures, one suite and the counting conftest."""
    root.mkdir(parents=True)
    fixtures = REPO / "fixtures"
    (root / "corpus.txt").write_text(_lines(fixtures / "corpus.txt", 800), encoding="utf-8")
    for name, n in (("train", 48), ("validation", 16), ("eval", 40)):
        (root / f"{name}.jsonl").write_text(_lines(fixtures / "sentiment" / f"{name}.jsonl", n), encoding="utf-8")
    (root / "candidates.toml").write_text(SPEC, encoding="utf-8")
    (root / "test_mini.py").write_text(SUITE, encoding="utf-8")
    (root / "conftest.py").write_text(CONFTEST, encoding="utf-8")
    return root


def _cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _default_sigint() -> None:
    """In the child: Ctrl-C as in a terminal, even when the benchmark runs as a background job
    (which starts with SIGINT ignored, and its children with it)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _pytest(project: Path, cache: Path, env: dict[str, str]) -> tuple[subprocess.CompletedProcess, float]:
    """The mini project's pytest run and the CPU seconds (user + sys) it used."""
    command = [sys.executable, "-m", "pytest", "test_mini.py", "-q", "-p", "no:cacheprovider", "--rootdir",
               str(project), "--ft-spec", "candidates.toml", "--ft-cache-dir", str(cache),
               "--ft-reports-dir", "reports", "--ft-update-baseline"]
    before = _cpu_of_children()
    done = subprocess.run(command, cwd=project, capture_output=True, text=True, timeout=600,
                          env={**os.environ, **env}, preexec_fn=_default_sigint)
    return done, _cpu_of_children() - before


def _interrupted(project: Path, cache: Path, fire: int, work: Path, *, fast: bool) -> dict[str, float | bool | None]:
    """One run interrupted at call ``fire``: seconds from the signal to the exit and to ``index.md``."""
    copy = work / f"{'fast' if fast else 'full'}-{fire}"
    shutil.copytree(project, copy, ignore=shutil.ignore_patterns("__pycache__"))
    stamp = work / "stamp"
    stamp.unlink(missing_ok=True)
    env = {"FT_BENCH_FIRE": str(fire), "FT_BENCH_STAMP": str(stamp)}
    if not fast:
        env["FT_BENCH_NO_FAST_EXIT"] = "1"
    done, cpu = _pytest(copy, cache, env)
    ended = time.time()
    sent, cpu_at_signal = (float(part) for part in stamp.read_text().split())
    index = copy / "reports" / "index.md"
    if done.returncode not in (2, 130):
        raise RuntimeError(f"the run interrupted at call {fire} ended with {done.returncode}:\n{done.stdout}")
    clean = "Traceback (most recent call last)" not in done.stdout + done.stderr
    row: dict[str, float | bool | None] = {"exit_s": ended - sent, "exit_cpu_s": cpu - cpu_at_signal,
                                           "clean": clean, "report_s": None}
    if index.read_text(encoding="utf-8").startswith("# ft-harness: run interrupted"):
        row["report_s"] = index.stat().st_mtime - sent  # the short report (not one published before)
    shutil.rmtree(copy)
    return row


def _summary(rows: list[dict[str, float | bool | None]], key: str) -> dict[str, float]:
    values = [float(r[key]) for r in rows if r[key] is not None]  # type: ignore[arg-type]
    return {"median": round(statistics.median(values), 2), "max": round(max(values), 2)}


def run() -> dict[str, object]:
    points = int(os.environ.get("FT_BENCH_INTERRUPT_POINTS", "10"))
    load_before = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="ft-bench-interrupts-"))
    project, cache = make_project(work / "project"), work / "cache"
    complete, _ = _pytest(project, cache, {"FT_BENCH_COUNT": str(work / "count")})
    if complete.returncode != 0:
        raise RuntimeError(f"the complete run failed:\n{complete.stdout}\n{complete.stderr}")
    total = int((work / "count").read_text())
    fast: list[dict[str, float | bool | None]] = []
    full: list[dict[str, float | bool | None]] = []
    for fire in random.Random(25).choices(range(1, total + 1), k=points):
        fast.append(_interrupted(project, cache, fire, work, fast=True))
        full.append(_interrupted(project, cache, fire, work, fast=False))
        print(f"[bench] interrupt at call {fire}/{total}: exit {fast[-1]['exit_s']:.2f} s "
              f"({fast[-1]['exit_cpu_s']:.2f} CPU s) fast, {full[-1]['exit_s']:.2f} s "
              f"({full[-1]['exit_cpu_s']:.2f} CPU s) full teardown", file=sys.stderr, flush=True)
    shutil.rmtree(work)
    return {"points": points, "end_of_run_calls": total,
            "fast_exit_s": _summary(fast, "exit_s"), "full_teardown_exit_s": _summary(full, "exit_s"),
            "fast_exit_cpu_s": _summary(fast, "exit_cpu_s"),
            "full_teardown_exit_cpu_s": _summary(full, "exit_cpu_s"),
            "report_written_s": _summary(fast + full, "report_s"),
            "all_clean": all(r["clean"] for r in fast + full),
            "fast_over_full_median": round(_summary(fast, "exit_s")["median"]
                                           / _summary(full, "exit_s")["median"], 3),
            "fast_over_full_cpu_median": round(_summary(fast, "exit_cpu_s")["median"]
                                               / _summary(full, "exit_cpu_s")["median"], 3),
            "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)]}


if __name__ == "__main__":
    print(strict_dumps(run(), indent=2))

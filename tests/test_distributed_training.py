"""Several processes train one candidate through the same lifecycle (``torchrun`` on CPU, gloo):
two processes with batch 4 train what one process with batch 8 trains, and the main process
stores it in the cache where a later single-process build finds it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import warm_python

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def _spec(root: Path, kind: str, batch: int, encoder: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", 16), ("validation", 4)):
        lines = (FIXTURES / "sentiment" / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()[:n]
        (root / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    option = f'base_model = "{encoder}"\n' if kind.startswith("encoder") else ""
    (root / "spec.toml").write_text(
        '[harness]\nseed = 0\n\n[suites.play]\ntask = "classification"\nlabels = ["positive", "negative"]\n'
        'train = "train.jsonl"\nvalidation = "validation.jsonl"\neval = "validation.jsonl"\n\n'
        f'[suites.play.candidates.c]\nkind = "{kind}"\n{option}'
        f"params = {{ n_epochs = 2, batch_size = {batch}, learning_rate = 5e-3, r = 4, alpha = 8, logging_steps = 1 }}\n",
        encoding="utf-8")
    return root / "spec.toml"


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory) -> Path:
    from harness.backends.encoder.tiny import TinyEncoderConfig, build_tiny_encoder
    from harness.data.corpus import read_corpus

    out = tmp_path_factory.mktemp("tiny-encoder")
    config = TinyEncoderConfig(vocab_size=600, hidden_size=32, intermediate_size=64, num_hidden_layers=2)
    built = build_tiny_encoder(out, read_corpus(FIXTURES / "corpus.txt"), config)
    # without dropout (each process draws its own masks) the split across processes is all that differs
    saved = json.loads((built / "config.json").read_text(encoding="utf-8"))
    saved.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (built / "config.json").write_text(json.dumps(saved), encoding="utf-8")
    return built


def _weights(directory: str) -> dict:
    from safetensors.torch import load_file

    return load_file(str(Path(directory) / "adapter_model.safetensors"))


@pytest.mark.skipif(shutil.which("torchrun") is None, reason="torchrun is not installed")
@pytest.mark.parametrize("kind", ["lora", "encoder-lora"])
def test_two_processes_train_what_one_process_trains_with_their_combined_batch(kind, tiny_base, tiny_encoder,
                                                                               tmp_path):
    import torch

    together = _spec(tmp_path / "together", kind, 4, tiny_encoder)
    alone = _spec(tmp_path / "alone", kind, 8, tiny_encoder)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}

    def train(spec: Path, cache: Path, *launcher: str) -> dict:
        args = ["-m", "harness.cli.train", "--spec", str(spec), "--suite", "play", "--candidate", "c",
                "--cache-dir", str(cache), "--base-model", str(tiny_base)]
        done = (warm_python.run(args, env=env, timeout=600) if launcher == (sys.executable,)
                else subprocess.run([*launcher, *args], env=env, capture_output=True, text=True, timeout=600))
        assert done.returncode == 0, done.stderr[-3000:]
        lines = [line for line in done.stdout.splitlines() if line.startswith('{"candidate"')]
        assert len(lines) == 1, done.stdout[-2000:]  # only the main process describes the candidate
        return json.loads(lines[0])

    cache = tmp_path / "cache"
    # torchrun starts its two workers as forks of the tests' warm interpreter (they run as python would)
    two = train(together, cache, "torchrun", "--nproc-per-node", "2", "--no-python", warm_python.executable())
    one = train(alone, tmp_path / "cache-alone", sys.executable)
    assert two["events"] == {"trained": 1} and one["events"] == {"trained": 1}
    assert two["train_loss"] == pytest.approx(one["train_loss"], abs=1e-5)
    assert two["eval_loss"] == pytest.approx(one["eval_loss"], abs=1e-5)
    a, b = _weights(two["adapter_dir"]), _weights(one["adapter_dir"])
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)
    assert not list(cache.glob("work/*"))  # the shared work folder goes once the artifact is stored

    again = train(together, cache, sys.executable)  # one process later: the cached artifact
    assert again["events"] == {} and again["adapter_dir"] == two["adapter_dir"]

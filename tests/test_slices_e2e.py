"""End to end through pytest: a LoRA candidate better overall but worse on one label fails the gate
when the suite asks (``fail_on_slice_regression = true``), and the failure names that slice.

The LoRA trains once (real tiny model, fixture data); the baseline is then written directly from
the first run's baseline file: perfect on the label the LoRA gets wrong most, wrong everywhere on
the other, so the LoRA improves overall while regressing on one label.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import warm_python
from miniproject import PYTEST_OPTIONS

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures"

SPEC = f"""
[harness]
corpus = "{(FIXTURES / 'corpus.txt').as_posix()}"
seed = 0
torch_threads = 1
tiny = {{ warmup_epochs = 0.25 }}

[suites.sliced]
task = "classification"
labels = ["positive", "negative"]
train = "{(FIXTURES / 'sentiment' / 'train.jsonl').as_posix()}"
validation = "{(FIXTURES / 'sentiment' / 'validation.jsonl').as_posix()}"
eval = "{(FIXTURES / 'sentiment' / 'eval.jsonl').as_posix()}"
decode = {{ max_new_tokens = 4 }}

[suites.sliced.gate]
metrics = {{ accuracy = {{ tolerance = 0.03 }} }}
fail_on_slice_regression = true

[suites.sliced.slices]
label = {{ by = "label" }}
length = {{ by = "length", quantiles = 3 }}

[suites.sliced.candidates.lora]
kind = "lora"
params = {{ n_epochs = 3, batch_size = 16, learning_rate = 6e-3, r = 16, alpha = 32, target_modules = "all-linear", modules_to_save = ["lm_head"] }}
"""

SUITE = '''
import pytest

pytestmark = pytest.mark.ft_suite("sliced")


def test_no_regression(evaluate, gate):
    gate(evaluate("lora"))
'''


def run(project: Path, *args: str) -> subprocess.CompletedProcess:
    command = ["-m", "pytest", str(project / "test_sliced.py"), *PYTEST_OPTIONS,
               "--rootdir", str(project), "--ft-spec", str(project / "candidates.toml"),
               "--ft-cache-dir", str(project / "cache"), "--ft-reports-dir", str(project / "reports"), *args]
    return warm_python.run(command, cwd=project, timeout=900)


def test_a_lora_better_overall_but_worse_on_one_label_fails_naming_the_slice(tmp_path):
    project = tmp_path / "sliced"
    project.mkdir()
    (project / "candidates.toml").write_text(SPEC, encoding="utf-8")
    (project / "test_sliced.py").write_text(SUITE, encoding="utf-8")
    first = run(project, "--ft-update-baseline")
    assert first.returncode == 0, first.stdout + first.stderr
    path = project / "reports" / "baseline.json"
    baseline = json.loads(path.read_text(encoding="utf-8"))
    entry = baseline["suites"]["sliced"]["lora"]
    assert set(entry["slices"]) == {"label", "length"} and len(entry["slices"]["length"]) == 3
    scores = entry["metrics"]["accuracy"]["scores"]
    labels = entry["slices"]["label"]
    accuracy = {label: sum(scores[i] for i in ids) / len(ids) for label, ids in labels.items()}
    weak = min(accuracy, key=accuracy.get)
    assert accuracy[weak] < 0.9, accuracy  # the LoRA makes mistakes on this label
    for label, ids in labels.items():
        for example_id in ids:
            scores[example_id] = 1.0 if label == weak else 0.0
    entry["metrics"]["accuracy"]["value"] = sum(scores.values()) / len(scores)
    current = sum(a * len(labels[k]) for k, a in accuracy.items()) / len(scores)
    assert current > entry["metrics"]["accuracy"]["value"]  # better overall than this baseline
    path.write_text(json.dumps(baseline, indent=2, sort_keys=True), encoding="utf-8")

    gated = run(project)
    assert gated.returncode == 1, gated.stdout + gated.stderr
    out = gated.stdout
    assert "hidden regression" in out
    assert f"slices: label: {weak}" in out
    assert f"label: {weak}: accuracy 1.000 → {accuracy[weak]:.3f}" in out
    other = next(k for k in labels if k != weak)
    assert f"label: {other}: accuracy" not in out.split("hidden regression", 1)[1].split("If these")[0]
    page = (project / "reports" / "sliced.md").read_text(encoding="utf-8")
    assert "**FAIL**" in page.splitlines()[2] and "hidden regression" in page.splitlines()[2]
    assert (project / "reports" / "sliced-lora-slices.png").is_file()

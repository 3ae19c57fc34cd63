"""A small, fast project for end-to-end plugin tests: a tiny spec, data subsets, one suite."""

from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

#: Options for the pytest runs of a mini project in a subprocess: no pytest cache, and none of the
#: test environment's plugins that such a run never uses (hypothesis's alone imports all of
#: hypothesis, about a second of CPU per run); the ft-harness plugin loads as it does for a user.
PYTEST_OPTIONS = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:benchmark", "-p", "no:anyio")
FIXTURES = REPO / "fixtures"

SPEC = """
[harness]
corpus = "corpus.txt"
seed = 0
batch_size = 32
torch_threads = 1
tiny = {{ hidden_size = 32, intermediate_size = 64, vocab_size = 400, warmup_epochs = 0.2 }}

[suites.mini]
task = "classification"
labels = ["positive", "negative"]
train = "{train}"
validation = "validation.jsonl"
eval = "eval.jsonl"
decode = {{ max_new_tokens = 3 }}
gate = {{ alpha = 0.05, inconclusive = "pass", metrics = {{ accuracy = {{ tolerance = 0.02 }} }} }}

[suites.mini.candidates.base]
kind = "base"

[suites.mini.candidates.lora]
kind = "lora"
params = {{ n_epochs = 1, batch_size = 16, learning_rate = 3e-3, r = 4, alpha = 8 }}
"""

SUITE = '''
import pytest

pytestmark = pytest.mark.ft_suite("mini")


def test_lora_scores(evaluate, compare):
    base = evaluate("base")
    lora = evaluate("lora")
    compare(base, lora, metric="accuracy")
    assert lora.n == base.n


@pytest.mark.parametrize("name", ["base", "lora"])
def test_no_regression(name, evaluate, gate):
    gate(evaluate(name))
'''


def _lines(path: Path, n: int) -> str:
    return "\n".join(path.read_text(encoding="utf-8").splitlines()[:n]) + "\n"


def make_project(root: Path, *, train_text: str | None = None) -> Path:
    """Write the mini project into ``root`` and return the spec path."""
    root.mkdir(parents=True, exist_ok=True)
    sentiment = FIXTURES / "sentiment"
    (root / "corpus.txt").write_text(_lines(FIXTURES / "corpus.txt", 800), encoding="utf-8")
    (root / "train.jsonl").write_text(train_text if train_text is not None else _lines(sentiment / "train.jsonl", 48),
                                      encoding="utf-8")
    (root / "validation.jsonl").write_text(_lines(sentiment / "validation.jsonl", 16), encoding="utf-8")
    (root / "eval.jsonl").write_text(_lines(sentiment / "eval.jsonl", 40), encoding="utf-8")
    spec = root / "candidates.toml"
    spec.write_text(SPEC.format(train="train.jsonl"), encoding="utf-8")
    (root / "test_mini.py").write_text(SUITE, encoding="utf-8")
    return spec


def read_results(reports: Path) -> dict:
    """The run state stored in ``reports/results.json``."""
    return json.loads((reports / "results.json").read_text(encoding="utf-8"))["state"]

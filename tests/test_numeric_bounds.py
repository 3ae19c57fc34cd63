"""Every number a spec, a command line or the session options take has a bound: a value outside it
is refused at load / argument parsing with an error naming the key or option (exit 2 for the CLI),
never a traceback or an unbounded run later."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import SpecError
from harness.options import OptionError, SessionOptions
from harness.spec import load_spec

SPEC = """
[harness]
corpus = "corpus.txt"
seed = 0
torch_threads = 1
tiny = { hidden_size = 32, num_attention_heads = 4 }

[suites.s]
task = "classification"
labels = ["a", "b"]
train = "train.jsonl"
validation = "train.jsonl"
eval = "eval.jsonl"
decode = { max_new_tokens = 3 }

[suites.s.candidates.lora]
kind = "lora"
params = { n_epochs = 1, r = 4 }

[suites.s.candidates.search]
kind = "search"
base_kind = "lora"
params = { n_epochs = 1 }
grid = { learning_rate = [1e-3, 2e-3], r = [2, 4] }

[suites.s.candidates.served]
kind = "base"
engine = "vllm"
vllm = { base_url = "http://127.0.0.1:1/v1" }
"""


def _project(tmp_path: Path, spec: str) -> Path:
    rows = [{"messages": [{"role": "user", "content": f"review {i}"},
                          {"role": "assistant", "content": "a" if i % 2 else "b"}]} for i in range(8)]
    text = "".join(json.dumps(r) + "\n" for r in rows)
    for name in ("train.jsonl", "eval.jsonl"):
        (tmp_path / name).write_text(text, encoding="utf-8")
    (tmp_path / "corpus.txt").write_text("a b\n", encoding="utf-8")
    path = tmp_path / "spec.toml"
    path.write_text(spec, encoding="utf-8")
    return path


def test_the_base_spec_loads(tmp_path):
    load_spec(_project(tmp_path, SPEC))


@pytest.mark.parametrize(("old", "new", "named"), [
    ("seed = 0", "seed = -1", "harness.seed"),
    ("seed = 0", "seed = 4294967296", "harness.seed"),
    ("max_new_tokens = 3", "max_new_tokens = 9223372036854775807", "suites.s.decode.max_new_tokens"),
    ("max_new_tokens = 3", "max_new_tokens = 3, seed = -5", "suites.s.decode.seed"),
    ("torch_threads = 1", "torch_threads = 100000", "harness.torch_threads"),
    ("hidden_size = 32,", "hidden_size = 1000000000000,", "harness.tiny.hidden_size"),
    ("hidden_size = 32,", "hidden_size = 30,", "harness.tiny.num_attention_heads"),
    ("hidden_size = 32,", "hidden_size = 36,", "harness.tiny.num_attention_heads"),  # odd head size
    ("params = { n_epochs = 1, r = 4 }", "params = { n_epochs = 9223372036854775807, r = 4 }",
     "suites.s.candidates.lora.params.n_epochs"),
    ("params = { n_epochs = 1, r = 4 }", "params = { n_epochs = 1, r = 4, batch_size = 10000000000 }",
     "suites.s.candidates.lora.params.batch_size"),
    ("grid = { learning_rate = [1e-3, 2e-3], r = [2, 4] }",
     "grid = { learning_rate = [" + ", ".join(f"{i}e-5" for i in range(1, 1001)) + "], r = ["
     + ", ".join(str(i) for i in range(1, 1001)) + "] }", "suites.s.candidates.search.grid"),
    ('vllm = { base_url = "http://127.0.0.1:1/v1" }', "vllm = { port = 70000 }", "suites.s.candidates.served.vllm.port"),
    ('vllm = { base_url = "http://127.0.0.1:1/v1" }', "vllm = { startup_timeout_s = inf }",
     "suites.s.candidates.served.vllm.startup_timeout_s"),
    ('kind = "lora"', 'kind = "lora"\nseed = 4294967296', "suites.s.candidates.lora.seed"),
])
def test_out_of_bound_spec_values_are_refused_at_load(tmp_path, old, new, named):
    assert old in SPEC
    with pytest.raises(SpecError) as caught:
        load_spec(_project(tmp_path, SPEC.replace(old, new, 1)))
    assert named in str(caught.value)


@pytest.mark.parametrize(("argv", "option"), [
    (["serve", "--model", "m=/nonexistent", "--port", "70000"], "--port"),
    (["serve", "--model", "m=/nonexistent", "--port", "-1"], "--port"),
    (["serve", "--model", "m=/nonexistent", "--max-upload-mb", "nan"], "--max-upload-mb"),
    (["serve", "--model", "m=/nonexistent", "--max-upload-mb", "-1"], "--max-upload-mb"),
    (["serve", "--model", "m=/nonexistent", "--max-upload-mb", "1e300"], "--max-upload-mb"),
    (["serve", "--model", "m=/nonexistent", "--learning-rate", "nan"], "--learning-rate"),
    (["serve", "--model", "m=/nonexistent", "--learning-rate", "-1"], "--learning-rate"),
    (["serve", "--model", "m=/nonexistent", "--fault-stall-s", "-5"], "--fault-stall-s"),
    (["serve", "--model", "m=/nonexistent", "--fault-rate", "nan"], "--fault-rate"),
    (["serve", "--model", "m=/nonexistent", "--default-max-tokens", "9223372036854775807"],
     "--default-max-tokens"),
    (["evaluate", "--suite", "s", "--candidate", "c", "--batch-size", "99999999999"], "--batch-size"),
    (["data", "synth", "out.jsonl", "--model", "m", "--topic", "t", "--n", "1", "--seed", "-1"], "--seed"),
    (["data", "synth", "out.jsonl", "--model", "m", "--topic", "t", "--n", "1", "--timeout", "inf"], "--timeout"),
])
def test_out_of_bound_command_line_values_are_usage_errors(argv, option, capsys):
    with pytest.raises(SystemExit) as caught:
        main(argv)
    err = capsys.readouterr().err
    assert caught.value.code == 2, err
    assert f"argument {option}" in err and "Traceback" not in err


@pytest.mark.parametrize(("field", "value"), [("repeat", 10**9), ("batch_size", 10**12)])
def test_session_options_are_bounded(field, value, tmp_path):
    with pytest.raises(OptionError) as caught:
        SessionOptions(spec_path=tmp_path / "spec.toml", root_dir=tmp_path, **{field: value})
    assert field in str(caught.value)

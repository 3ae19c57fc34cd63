"""The ``prompted`` kind in the spec: its keys checked at load, shots drawable, context never overflowed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import SpecError
from harness.spec import load_spec


def write_split(path: Path, labels: list[str], n: int, offset: int = 0) -> None:
    rows = [{"messages": [{"role": "user", "content": f"review number {i + offset}"},
                          {"role": "assistant", "content": labels[i % len(labels)]}]} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def spec_file(tmp_path: Path, candidate: str, *, labels=("positive", "negative"), train_labels=None,
              task: str = "classification", base_model: str = "embedded") -> Path:
    write_split(tmp_path / "train.jsonl", list(train_labels or labels), 24)
    write_split(tmp_path / "eval.jsonl", list(labels), 10, offset=100)
    label_line = f"labels = {json.dumps(list(labels))}" if task == "classification" else ""
    path = tmp_path / "spec.toml"
    path.write_text(f"""
[harness]
base_model = "{base_model}"

[suites.s]
task = "{task}"
{label_line}
train = "train.jsonl"
eval = "eval.jsonl"

[suites.s.candidates.p]
{candidate}
""", encoding="utf-8")
    return path


def test_a_prompted_candidate_loads_with_its_base_kinds_keys(tmp_path):
    spec = load_spec(spec_file(tmp_path, 'kind = "prompted"\nbase_kind = "model"\npath = "m"\nshots = 4\n'
                                         'instruction = "Answer in one word."\nscoring = "likelihood"'))
    options = spec.suites["s"].candidates["p"].options
    assert options == {"base_kind": "model", "path": "m", "shots": 4, "instruction": "Answer in one word.",
                       "scoring": "likelihood"}


@pytest.mark.parametrize(("candidate", "message"), [
    ('kind = "prompted"\nbase_kind = "base"\nshots = 50',
     r"suites\.s\.candidates\.p\.shots: shots = 50 but the train split has only 24 usable example"),
    ('kind = "prompted"', r"suites\.s\.candidates\.p\.base_kind: missing key 'base_kind'"),
    ('kind = "prompted"\nbase_kind = "lora"', r"suites\.s\.candidates\.p\.base_kind: 'lora' is not one of"),
    ('kind = "prompted"\nbase_kind = "base"\npath = "x"', r"suites\.s\.candidates\.p\.path: unknown key"),
    ('kind = "prompted"\nbase_kind = "adapter"', r"suites\.s\.candidates\.p\.path: missing key 'path'"),
    ('kind = "prompted"\nbase_kind = "base"\nshots = -1', r"suites\.s\.candidates\.p\.shots: expected an integer >= 0"),
    ('kind = "prompted"\nbase_kind = "base"\nscoring = "vibes"', r"suites\.s\.candidates\.p\.scoring: 'vibes' is not one"),
    ('kind = "prompted"\nbase_kind = "base"\ninstruction = 3', r"suites\.s\.candidates\.p\.instruction: expected a string"),
])
def test_bad_prompted_tables_are_refused_at_load(tmp_path, candidate, message):
    with pytest.raises(SpecError, match=message):
        load_spec(spec_file(tmp_path, candidate))


def test_a_label_with_no_train_example_is_refused_at_load(tmp_path):
    path = spec_file(tmp_path, 'kind = "prompted"\nbase_kind = "base"\nshots = 3',
                     labels=("positive", "negative", "neutral"), train_labels=("positive", "negative"))
    with pytest.raises(SpecError, match=r"candidates\.p\.shots: label 'neutral' has no train example"):
        load_spec(path)
    path.write_text(path.read_text().replace("shots = 3", "shots = 3\nstratify = false"))
    assert load_spec(path).suites["s"].candidates["p"].options["stratify"] is False


def test_likelihood_scoring_of_a_generation_suite_is_refused(tmp_path):
    with pytest.raises(SpecError, match=r"candidates\.p\.scoring: 'likelihood' scoring needs a classification"):
        load_spec(spec_file(tmp_path, 'kind = "base"\nscoring = "likelihood"', task="generation"))


@pytest.mark.slow
def test_an_instruction_that_overflows_the_context_is_an_error_naming_the_key(tmp_path):
    from harness.backends.hf.templates import save_format_model
    from harness.session import EvalSession, SessionOptions

    model = save_format_model(tmp_path / "model", "chatml")  # 1,024 positions
    long = " ".join(["answer the question"] * 800)
    path = spec_file(tmp_path, f'kind = "prompted"\nbase_kind = "base"\ninstruction = "{long}"', base_model=str(model))
    session = EvalSession(SessionOptions(spec_path=path, root_dir=tmp_path, cache_dir=tmp_path / "cache"))
    try:
        with pytest.raises(SpecError) as info:
            session.candidate("s", "p")
    finally:
        session.close()
    text = str(info.value)
    assert "suites.s.candidates.p.instruction: suite 's', candidate 'p'" in text
    assert "the model's context is 1,024 tokens (config max_position_embeddings) minus max_new_tokens 16" in text
    tokens = int(text.split(" is ")[1].split(" tokens")[0].replace(",", ""))
    assert tokens > 1024 - 16

"""The candidate spec parser: valid files load, every mistake names file and key."""

from pathlib import Path

import pytest

from harness.errors import SpecError
from harness.spec import load_spec

GOOD = """
[harness]
corpus = "corpus.txt"
[suites.s]
task = "classification"
labels = ["a", "b"]
train = "train.jsonl"
eval = "eval.jsonl"
decode = { max_new_tokens = 3 }
[suites.s.candidates.lora]
kind = "lora"
params = { r = 4 }
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_loads_and_resolves_paths(tmp_path):
    spec = load_spec(write(tmp_path, GOOD))
    suite = spec.suite("s")
    assert suite.labels == ("a", "b")
    assert suite.train == (tmp_path / "train.jsonl").resolve()
    assert suite.decode.max_new_tokens == 3
    assert suite.candidate("lora").params == {"r": 4}
    assert spec.corpus == (tmp_path / "corpus.txt").resolve()


def test_committed_spec_loads(repo_root):
    spec = load_spec(repo_root / "fixtures" / "candidates.toml")
    assert {"sentiment", "product_descriptions"} <= set(spec.suites)
    for suite in spec.suites.values():
        assert suite.eval.exists(), suite.eval


@pytest.mark.parametrize(("mutation", "expected"), [
    (('task = "classification"', 'task = "ranking"'), "suites.s.task"),
    (('labels = ["a", "b"]', 'labels = ["a"]'), "suites.s.labels"),
    (('kind = "lora"', 'kin = "lora"'), "missing key 'kind'"),
    (('decode = { max_new_tokens = 3 }', 'decode = { max_tokens = 3 }'), "suites.s.decode.max_tokens: unknown key"),
    (('eval = "eval.jsonl"', 'eval = 3'), "suites.s.eval"),
    (('[suites.s]', '[suites.s]\nbogus = 1'), "suites.s.bogus: unknown key"),
])
def test_errors_name_file_and_key(tmp_path, mutation, expected):
    old, new = mutation
    path = write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert str(path) in str(err.value)
    assert expected in str(err.value)


def test_not_toml_and_missing(tmp_path):
    with pytest.raises(SpecError, match="not valid TOML"):
        load_spec(write(tmp_path, "[suites\n"))
    with pytest.raises(SpecError, match="not found"):
        load_spec(tmp_path / "nope.toml")


def test_unknown_suite_and_candidate(tmp_path):
    spec = load_spec(write(tmp_path, GOOD))
    with pytest.raises(SpecError, match="no suite 'x'"):
        spec.suite("x")
    with pytest.raises(SpecError, match=r"no candidate 'full'.*declared: lora"):
        spec.suite("s").candidate("full")

"""Slice declarations in the spec and row metadata in the data: accepted forms and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.data import load_split
from harness.data.slices import bucket_names, length_buckets, slice_members, slice_sizes
from harness.errors import DatasetError, SpecError
from harness.spec import parse_spec
from harness.spec.slices import SliceSpec


def spec_with(slices: str, *, task: str = "classification", gate: str = "") -> str:
    labels = 'labels = ["positive", "negative"]\n' if task == "classification" else ""
    return (f'[suites.s]\ntask = "{task}"\n{labels}eval = "eval.jsonl"\n{gate}\n'
            f'[suites.s.candidates.base]\nkind = "base"\n[suites.s.slices]\n{slices}\n')


def parse(text: str, tmp_path: Path):
    import tomllib

    return parse_spec(tomllib.loads(text), tmp_path / "candidates.toml")


def test_every_slice_kind_parses(tmp_path):
    spec = parse(spec_with('label = { by = "label" }\nlength = { by = "length", quantiles = 3 }\n'
                           'edges = { by = "length", edges = [10, 20], tokenizer = "estimate" }\n'
                           'category = { by = "metadata", field = "category" }\n'
                           'vip = { by = "ids", groups = { a = ["x", "y"], b = [3] } }',
                           gate="[suites.s.gate]\nfail_on_slice_regression = true\nslice_correction = \"bh\"\n"
                                "min_slice_size = 30\n"), tmp_path)
    suite = spec.suite("s")
    assert [s.by for s in suite.slices] == ["label", "length", "length", "metadata", "ids"]
    assert suite.slices[4].groups == {"a": ("x", "y"), "b": ("3",)}
    assert suite.slices[2].edges == (10.0, 20.0) and suite.slices[2].tokenizer == "estimate"
    assert (suite.gate.fail_on_slice_regression, suite.gate.slice_correction, suite.gate.min_slice_size) == \
        (True, "bh", 30)


@pytest.mark.parametrize(("slices", "needle"), [
    ('label = { by = "label", field = "x" }', "suites.s.slices.label.field: unknown key"),
    ('x = { by = "colour" }', "suites.s.slices.x.by: 'colour' is not one of label, metadata, length, ids"),
    ('x = { by = "metadata" }', "suites.s.slices.x.field: missing key 'field'"),
    ('x = { by = "length" }', "suites.s.slices.x: a length slice takes either `quantiles = N` or `edges = [...]`"),
    ('x = { by = "length", quantiles = 1 }', "suites.s.slices.x.quantiles: expected an integer >= 2"),
    ('x = { by = "length", edges = [20, 10] }', "suites.s.slices.x.edges: edges must increase strictly"),
    ('x = { by = "ids", groups = { a = ["1", "2"], b = ["2"] } }',
     "suites.s.slices.x.groups.b: id '2' is also in groups.a; explicit id lists must not overlap"),
    ('x = { by = "ids", groups = { a = [] } }', "suites.s.slices.x.groups.a: empty id list (an empty slice)"),
    ('x = { by = "ids", ids = ["1"] }', "suites.s.slices.x.ids: unknown key"),
    ('x = "label"', "suites.s.slices.x: expected a table like { by = \"label\" }"),
])
def test_bad_slice_declarations_are_refused_at_load_with_the_key_path(tmp_path, slices, needle):
    with pytest.raises(SpecError) as info:
        parse(spec_with(slices), tmp_path)
    assert needle in str(info.value)
    assert "candidates.toml" in str(info.value)


def test_label_slices_need_a_classification_suite_and_gate_keys_are_checked(tmp_path):
    with pytest.raises(SpecError, match=r"slices.l.by: slices by label need a classification suite"):
        parse(spec_with('l = { by = "label" }', task="generation"), tmp_path)
    with pytest.raises(SpecError, match=r"gate.slice_correction: expected 'holm' or 'bh'"):
        parse(spec_with('l = { by = "label" }', gate='[suites.s.gate]\nslice_correction = "bonferroni"\n'), tmp_path)
    with pytest.raises(SpecError, match=r"gate.min_slice_size: expected a whole number >= 2"):
        parse(spec_with('l = { by = "label" }', gate="[suites.s.gate]\nmin_slice_size = 0\n"), tmp_path)


def chat(user: str, reply: str, **extra) -> dict:
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": reply}], **extra}


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.mark.parametrize("record", [
    chat("hi", "positive", metadata={"category": "kitchen", "n": 3, "vip": True}),
    {"instruction": "Classify", "input": "hi", "output": "positive", "metadata": {"category": "kitchen"}},
    {"prompt": "hi", "completion": "positive", "metadata": {"category": "kitchen"}},
    {"prompt": [{"role": "user", "content": "hi"}], "completion": [{"role": "assistant", "content": "ok"}],
     "metadata": {"category": "kitchen"}},
])
def test_metadata_is_accepted_at_the_top_of_every_json_format(tmp_path, record):
    split = load_split(write_jsonl(tmp_path / "eval.jsonl", [record]))
    assert split.examples[0].meta["metadata"]["category"] == "kitchen"


@pytest.mark.parametrize(("record", "needle"), [
    (chat("hi", "ok", metadata="kitchen"), "field 'metadata': metadata must be an object"),
    (chat("hi", "ok", metadata={"tags": ["a"]}), "field 'metadata.tags': metadata.tags must be a string, number"),
    ({"messages": [{"role": "user", "content": "hi", "metadata": {"c": "x"}},
                   {"role": "assistant", "content": "ok"}]},
     "field 'messages[0].metadata': 'metadata' belongs to the record"),
])
def test_metadata_anywhere_else_or_of_the_wrong_shape_is_refused_with_the_line(tmp_path, record, needle):
    path = write_jsonl(tmp_path / "eval.jsonl", [chat("a", "b"), record])
    with pytest.raises(DatasetError) as info:
        load_split(path)
    assert f"{path}:2: {needle}" in str(info.value)


def test_csv_metadata_columns_and_json_metadata_cell(tmp_path):
    columns = tmp_path / "a.csv"
    columns.write_text("prompt,completion,metadata.category,metadata.source\nhi,ok,kitchen,web\nyo,no,bags,\n",
                       encoding="utf-8")
    examples = load_split(columns).examples
    assert [e.meta["metadata"] for e in examples] == [{"category": "kitchen", "source": "web"}, {"category": "bags"}]
    cell = tmp_path / "b.csv"
    cell.write_text('prompt,completion,metadata\nhi,ok,"{""category"": ""kitchen""}"\n', encoding="utf-8")
    assert load_split(cell).examples[0].meta["metadata"] == {"category": "kitchen"}
    both = tmp_path / "c.csv"
    both.write_text('prompt,completion,metadata,metadata.x\nhi,ok,"{""a"": 1}",2\n', encoding="utf-8")
    with pytest.raises(DatasetError, match=r"c\.csv:2: field 'metadata': both a JSON 'metadata' cell"):
        load_split(both)


def test_parquet_metadata_struct_and_columns(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    table = pa.table({"prompt": ["hi", "yo"], "completion": ["ok", "no"],
                      "metadata": [{"category": "kitchen"}, {"category": "bags"}]})
    pq.write_table(table, tmp_path / "a.parquet")
    assert [e.meta["metadata"] for e in load_split(tmp_path / "a.parquet").examples] == \
        [{"category": "kitchen"}, {"category": "bags"}]
    pq.write_table(pa.table({"prompt": ["hi"], "completion": ["ok"], "metadata.category": ["audio"]}),
                   tmp_path / "b.parquet")
    assert load_split(tmp_path / "b.parquet").examples[0].meta["metadata"] == {"category": "audio"}


def test_a_metadata_field_missing_from_some_rows_names_file_and_line(tmp_path):
    rows = [chat(f"r{i}", "positive", metadata={"category": "a"}) for i in range(3)]
    rows[1] = chat("r1", "positive")
    path = write_jsonl(tmp_path / "eval.jsonl", rows)
    examples = load_split(path).examples
    with pytest.raises(DatasetError) as info:
        slice_members(examples, [SliceSpec("cat", "metadata", field="category")], path=str(path))
    assert str(info.value).startswith(f"{path}:2: slice 'cat' reads metadata.category, but this row has no "
                                      "metadata.category (1 of 3 rows lack it")


def test_empty_slices_and_unknown_ids_are_refused(tmp_path):
    path = write_jsonl(tmp_path / "eval.jsonl", [chat(f"r{i}", "positive", id=f"e{i}") for i in range(4)])
    examples = load_split(path).examples
    with pytest.raises(DatasetError, match=r"slice 'label' .* no eval examples in 'negative': an empty slice"):
        slice_members(examples, [SliceSpec("label", "label")], labels=("positive", "negative"), path=str(path))
    with pytest.raises(DatasetError, match=r"slice 'len' .*no eval examples in 'tokens > 100'"):
        slice_members(examples, [SliceSpec("len", "length", edges=(100.0,), tokenizer="estimate")], path=str(path))
    with pytest.raises(DatasetError, match=r"slice vip.a lists 1 id\(s\) the eval set does not have: 'e9'"):
        slice_members(examples, [SliceSpec("vip", "ids", groups={"a": ("e1", "e9")})], path=str(path))


def test_membership_by_label_length_and_ids(tmp_path):
    texts = ["a" * 4, "b" * 40, "c" * 80, "d" * 8, "e" * 120, "f" * 12]
    rows = [chat(t, "positive" if i % 2 else "negative", id=f"e{i}") for i, t in enumerate(texts)]
    examples = load_split(write_jsonl(tmp_path / "eval.jsonl", rows)).examples
    members = slice_members(examples, [SliceSpec("label", "label"),
                                       SliceSpec("len", "length", quantiles=2),
                                       SliceSpec("vip", "ids", groups={"x": ("e5", "e0")})],
                            labels=("positive", "negative"), count_tokens=len)
    assert members["label"] == {"positive": ["e1", "e3", "e5"], "negative": ["e0", "e2", "e4"]}
    assert members["len"] == {"tokens <= 12": ["e0", "e3", "e5"], "tokens > 12": ["e1", "e2", "e4"]}
    assert members["vip"] == {"x": ["e0", "e5"]}  # eval-set order
    assert slice_sizes(members)["len"] == {"tokens <= 12": 3, "tokens > 12": 3}


def test_length_buckets_are_half_open_and_named_by_their_edges():
    edges, buckets = length_buckets([1, 10, 11, 20, 21], edges=[10, 20])
    assert buckets == [0, 0, 1, 1, 2]
    assert bucket_names(edges) == ["tokens <= 10", "10 < tokens <= 20", "tokens > 20"]
    edges, buckets = length_buckets([5] * 9 + [6], quantiles=3)  # ties merge repeated edges
    assert edges == [5.0] and buckets == [0] * 9 + [1]


def test_lint_reports_slice_sizes_missing_metadata_and_small_slices(tmp_path):
    from harness.data.lint import lint_splits

    rows = [chat(f"review {i}", "positive" if i % 2 else "negative", metadata={"category": "a" if i < 25 else "b"})
            for i in range(30)]
    rows[3] = chat("review 3", "positive")
    split = load_split(write_jsonl(tmp_path / "eval.jsonl", rows))
    report = lint_splits(split, split, task="classification")
    assert report.slices == {"metadata.category: a": 24, "metadata.category: b": 5}
    messages = [f.message for f in report.warnings]
    assert any("metadata.category is missing from 1 of 30 rows" in m for m in messages)
    assert any("1 slice(s) under 20 examples (gated inconclusive): metadata.category: b" in m for m in messages)
    declared = lint_splits(split, split, task="classification", slices=[SliceSpec("label", "label")],
                           slice_labels=("positive", "negative"))
    assert declared.slices == {"label: positive": 15, "label: negative": 15}

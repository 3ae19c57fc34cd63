"""Conversion round trips and the never-a-traceback guarantee, as hypothesis properties."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.cli import main
from harness.data import load_split
from harness.data.convert import convert_examples, convert_file
from harness.data.formats import join_instruction, split_instruction
from harness.data.lint import lint_splits
from harness.data.validate import validate_file
from harness.errors import DatasetError

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])

text = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)
filled = text.filter(lambda s: s.strip() != "")


@st.composite
def chat_records(draw):
    """Single-exchange chat records (optional system, optional id / label keys)."""
    messages = []
    if draw(st.booleans()):
        messages.append({"role": "system", "content": draw(filled)})
    messages.append({"role": "user", "content": draw(filled)})
    messages.append({"role": "assistant", "content": draw(filled)})
    record = {"messages": messages}
    if draw(st.booleans()):
        record["label"] = draw(text)
    return record


instructions = filled.filter(lambda s: "\n\n" not in s and not s.endswith("\n"))


@st.composite
def instruction_records(draw):
    """Alpaca records whose instruction has no blank line (the documented ambiguity)."""
    record = {"instruction": draw(instructions), "input": draw(text), "output": draw(filled)}
    if draw(st.booleans()):
        record["system"] = draw(filled)
    if draw(st.booleans()):
        record["label"] = draw(text)
    return record


def _write(path: Path, records) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _read(path: Path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line]


@given(st.lists(chat_records(), min_size=1, max_size=5), st.sampled_from([".jsonl", ".json"]))
@SETTINGS
def test_chat_to_instruction_and_back_is_exact(tmp_path_factory, records, suffix):
    folder = tmp_path_factory.mktemp("rt")
    source = _write(folder / "chat.jsonl", records)
    convert_file(source, folder / f"inst{suffix}", to="instruction")
    convert_file(folder / f"inst{suffix}", folder / "back.jsonl", to="chat")
    assert _read(folder / "back.jsonl") == records


@given(st.lists(instruction_records(), min_size=1, max_size=5))
@SETTINGS
def test_instruction_to_chat_and_back_is_exact(tmp_path_factory, records):
    folder = tmp_path_factory.mktemp("rt")
    source = _write(folder / "inst.jsonl", records)
    convert_file(source, folder / "chat.jsonl", to="chat")
    convert_file(folder / "chat.jsonl", folder / "back.jsonl", to="instruction")
    assert _read(folder / "back.jsonl") == records


@given(st.lists(instruction_records(), min_size=1, max_size=4))
@SETTINGS
def test_in_memory_conversion_back_uses_the_original_record(tmp_path_factory, records):
    split = load_split(_write(tmp_path_factory.mktemp("m") / "inst.jsonl", records))
    back, problems = convert_examples(split.examples, "instruction")
    assert problems == [] and back == records


@given(filled)
def test_split_instruction_inverts_join_on_user_text(user_text):
    assert join_instruction(*split_instruction(user_text)) == user_text


def test_cli_convert_to_csv_and_parquet_and_back(tmp_path, capsys):
    records = [{"instruction": "Add", "input": "2 2", "output": "4", "label": "4"},
               {"instruction": "Say hi.", "input": "", "output": "hi"}]
    source = _write(tmp_path / "inst.jsonl", records)
    assert main(["data", "convert", str(source), str(tmp_path / "chat.csv"), "--to", "chat"]) == 0
    assert main(["data", "convert", str(tmp_path / "chat.csv"), str(tmp_path / "c.parquet"),
                 "--to", "chat"]) == 0
    assert main(["data", "convert", str(tmp_path / "c.parquet"), str(tmp_path / "back.jsonl"),
                 "--to", "instruction"]) == 0
    back = _read(tmp_path / "back.jsonl")
    # CSV holds text only: the missing label cell of record 2 reads back as an empty string.
    assert back == [records[0], {**records[1], "label": ""}]
    assert "wrote 2 chat records" in capsys.readouterr().out


def test_cli_convert_system_and_refusals(tmp_path, capsys):
    chat = [{"messages": [{"role": "user", "content": "hi"},
                          {"role": "assistant", "content": "yo"},
                          {"role": "user", "content": "again"},
                          {"role": "assistant", "content": "yo"}]}]
    source = _write(tmp_path / "multi.jsonl", chat)
    assert main(["data", "convert", str(source), str(tmp_path / "o.jsonl"),
                 "--to", "instruction"]) == 1
    err = capsys.readouterr().err
    assert f"{source}:1: field 'messages': cannot convert to instruction" in err
    assert not (tmp_path / "o.jsonl").exists()
    single = _write(tmp_path / "one.jsonl", [{"instruction": "Add", "input": "", "output": "2"}])
    assert main(["data", "convert", str(single), str(tmp_path / "s.jsonl"), "--to", "chat",
                 "--system", "Be exact."]) == 0
    assert _read(tmp_path / "s.jsonl")[0]["messages"][0] == {"role": "system",
                                                             "content": "Be exact."}
    with pytest.raises(SystemExit) as info:
        main(["data", "convert", str(single), str(tmp_path / "x.jsonl"), "--to", "yaml"])
    assert info.value.code == 2


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12)
roles = st.sampled_from(["system", "user", "assistant", "function", "bot", "", "USER"])
messages = st.lists(st.fixed_dictionaries(
    {"role": roles | json_values, "content": text | json_values},
    optional={"name": json_values, "weight": json_values, "function_call": json_values}),
    max_size=4) | json_values
near_records = st.one_of(
    st.fixed_dictionaries({"messages": messages}, optional={"id": json_values,
                                                            "label": json_values}),
    st.fixed_dictionaries({"instruction": text | json_values, "output": text | json_values},
                          optional={"input": json_values, "system": json_values}),
    st.fixed_dictionaries({"prompt": text | messages, "completion": text | messages}),
    st.fixed_dictionaries({"text": text | json_values}),
    json_values,
)


def _never_a_traceback(path: Path) -> None:
    report = validate_file(path)
    assert report.ok == (not report.errors)
    for finding in report.errors:
        assert str(path) in str(finding)
    try:
        split = load_split(path)
    except DatasetError as exc:
        assert not report.ok and exc.problems
        assert str(path) in str(exc)
        return
    assert report.ok and len(split) == report.n_examples
    lint_splits(split, split)
    convert_examples(split.examples, "instruction")


@given(st.lists(near_records, min_size=0, max_size=6))
@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_arbitrary_json_gives_a_report_or_dataset_error(tmp_path_factory, records):
    path = tmp_path_factory.mktemp("j") / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    _never_a_traceback(path)


@given(st.binary(max_size=300), st.sampled_from([".jsonl", ".json", ".txt", ".csv", ".parquet",
                                                 ""]))
@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_arbitrary_bytes_give_a_report_or_dataset_error(tmp_path_factory, data, suffix):
    path = tmp_path_factory.mktemp("b") / f"data{suffix}"
    path.write_bytes(data)
    _never_a_traceback(path)


@given(st.lists(near_records, min_size=1, max_size=4))
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_arbitrary_json_through_the_cli(tmp_path_factory, records):
    path = tmp_path_factory.mktemp("c") / "data.json"
    path.write_text(json.dumps(records), encoding="utf-8")
    out = tmp_path_factory.mktemp("o") / "out.jsonl"
    assert main(["data", "validate", str(path)]) in (0, 1)
    assert main(["data", "lint", str(path)]) in (0, 1)
    assert main(["data", "convert", str(path), str(out), "--to", "instruction"]) in (0, 1)


csv_text = st.lists(st.lists(st.text(st.sampled_from('ab,"\n\r[]{}: \\x'), max_size=12),
                             min_size=1, max_size=4), max_size=5)


@given(st.sampled_from(["messages", "instruction,output", "prompt,completion,id", "text"]),
       csv_text)
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_arbitrary_csv_gives_a_report_or_dataset_error(tmp_path_factory, header, rows):
    path = tmp_path_factory.mktemp("csv") / "data.csv"
    path.write_text(header + "\n" + "\n".join(",".join(cells) for cells in rows),
                    encoding="utf-8")
    _never_a_traceback(path)

"""Loading every supported format into chat examples; ids, labels, fingerprints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.data import Split, fingerprint_split, load_split
from harness.data.formats import detect_format
from harness.errors import DatasetError

GOOD = Path(__file__).parent / "data_good"
USER, ASSISTANT = "user", "assistant"


def _write_jsonl(path: Path, rows) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_chat_jsonl_ids_and_meta():
    split = load_split(GOOD / "chat.jsonl")
    assert isinstance(split, Split) and split.name == "chat" and len(split) == 4
    assert [e.id for e in split.examples] == ["chat-1", "chat-2", "chat-3", "named"]
    first = split.examples[0]
    raw = json.loads((GOOD / "chat.jsonl").read_text().splitlines()[0])
    assert first.messages == raw["messages"] and first.meta["record"] == raw
    assert (first.source, first.line, first.meta["format"]) == (str(GOOD / "chat.jsonl"), 1,
                                                                "chat")
    assert first.reference == "4"


def test_instruction_form_becomes_chat():
    split = load_split(GOOD / "instruction.jsonl", name="train")
    assert [e.id for e in split.examples] == ["train-1", "train-2", "train-3"]
    assert split.examples[0].messages == [
        {"role": USER, "content": "Translate to French.\n\ncat"},
        {"role": ASSISTANT, "content": "chat"}]
    assert split.examples[1].messages[0] == {"role": USER, "content": "Say hello."}
    assert split.examples[2].messages[0] == {"role": "system", "content": "You label sentiment."}


def test_prompt_completion_text_and_json_array():
    pc = load_split(GOOD / "prompt_completion.jsonl")
    assert pc.examples[0].messages == [{"role": USER, "content": "2+2="},
                                       {"role": ASSISTANT, "content": "4"}]
    assert [m["role"] for m in pc.examples[1].messages] == [USER, ASSISTANT]
    text = load_split(GOOD / "corpus.txt")
    assert [e.line for e in text.examples] == [1, 3]
    assert text.examples[1].messages == [{"role": ASSISTANT,
                                          "content": "The second line of text."}]
    array = load_split(GOOD / "chat_array.json")
    text_lines = (GOOD / "chat_array.json").read_text().splitlines()
    element_starts = [i for i, line in enumerate(text_lines, start=1) if line == "  {"]
    assert [e.line for e in array.examples] == element_starts
    assert [e.messages for e in array.examples] == [
        r["messages"] for r in json.loads((GOOD / "chat_array.json").read_text())]


def test_csv_reads_cells_as_text_and_uses_file_lines(tmp_path):
    split = load_split(GOOD / "instruction.csv")
    assert [e.line for e in split.examples] == [2, 3, 5]  # the header is line 1; row 2's cell spans two lines
    assert split.examples[1].messages[0]["content"] == "Classify: dull,\nslow film"
    assert split.examples[2].meta["record"]["instruction"] == "Classify: 007 rules"
    assert [e.meta["label"] for e in split.examples] == ["positive", "negative", "positive"]
    assert "unit" not in split.examples[0].meta


def test_parquet_and_jsonl_give_the_same_fingerprint(tmp_path):
    import pandas as pd

    jsonl = load_split(GOOD / "chat.jsonl")
    records = [json.loads(line) for line in (GOOD / "chat.jsonl").read_text().splitlines()]
    pd.DataFrame(records).to_parquet(tmp_path / "chat.parquet")
    parquet = load_split(tmp_path / "chat.parquet")
    assert [e.messages for e in parquet.examples] == [e.messages for e in jsonl.examples]
    assert parquet.fingerprint == jsonl.fingerprint
    no_suffix = tmp_path / "chat_data"
    no_suffix.write_bytes((tmp_path / "chat.parquet").read_bytes())
    assert load_split(no_suffix).fingerprint == jsonl.fingerprint


def test_fingerprint_ignores_formatting_but_not_content_or_order(tmp_path):
    rows = [{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant",
                                                                "content": "yo"}]},
            {"messages": [{"role": "user", "content": "a"}, {"role": "assistant",
                                                               "content": "b"}]}]
    base = load_split(_write_jsonl(tmp_path / "a.jsonl", rows))
    reformatted = tmp_path / "b.json"
    reformatted.write_text(json.dumps(rows, indent=4, sort_keys=True))
    assert load_split(reformatted).fingerprint == base.fingerprint
    spaced = tmp_path / "c.jsonl"
    spaced.write_text("\n\n".join(json.dumps(r, indent=None, separators=(" , ", " : "))
                                  for r in rows) + "\n\n")
    assert load_split(spaced).fingerprint == base.fingerprint
    assert fingerprint_split(base) == base.fingerprint
    changed = [rows[0], {"messages": [rows[1]["messages"][0], {"role": "assistant",
                                                               "content": "c"}]}]
    assert load_split(_write_jsonl(tmp_path / "d.jsonl", changed)).fingerprint != base.fingerprint
    assert load_split(_write_jsonl(tmp_path / "e.jsonl", rows[::-1])).fingerprint \
        != base.fingerprint


def test_system_prompt_added_only_where_missing(tmp_path):
    rows = [{"instruction": "Say hi.", "input": "", "output": "hi"},
            {"instruction": "Say yo.", "input": "", "output": "yo", "system": "Own prompt."}]
    split = load_split(_write_jsonl(tmp_path / "t.jsonl", rows), system="Default prompt.")
    assert [e.messages[0]["content"] for e in split.examples] == ["Default prompt.",
                                                                   "Own prompt."]


def test_explicit_format_overrides_detection(tmp_path):
    rows = [{"text": "plain words", "messages": "not a list"}]
    path = _write_jsonl(tmp_path / "t.jsonl", rows)
    assert detect_format(rows[0]) == "chat"
    with pytest.raises(DatasetError) as info:
        load_split(path)
    assert info.value.line == 1 and info.value.field == "messages"
    split = load_split(path, format="text")
    assert split.examples[0].messages == [{"role": "assistant", "content": "plain words"}]
    with pytest.raises(DatasetError, match="unknown format"):
        load_split(path, format="yaml")


def test_classification_label_from_reply(tmp_path):
    rows = [{"messages": [{"role": "user", "content": "great"},
                          {"role": "assistant", "content": "positive"}]}]
    split = load_split(_write_jsonl(tmp_path / "t.jsonl", rows), task="classification")
    assert split.examples[0].meta["label"] == "positive"
    assert "label" not in load_split(tmp_path / "t.jsonl").examples[0].meta


def test_dataset_error_lists_every_problem(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"messages": [{"role": "bot", "content": "x"}, {"role": "assistant", '
                    '"content": 1}]}\n\n[1]\n{oops\n')
    with pytest.raises(DatasetError) as info:
        load_split(path)
    err = info.value
    assert err.path == str(path) and err.line == 1 and err.field == "messages[0].role"
    assert [p.split(": ")[0] for p in err.problems] == [f"{path}:1", f"{path}:1", f"{path}:3",
                                                        f"{path}:4"]
    assert "4 errors" in str(err)


def test_hub_id_offline_gives_a_dataset_error(monkeypatch):
    import datasets.config
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    with pytest.raises(DatasetError) as info:
        load_split("someone/some-dataset")
    assert "hub dataset 'someone/some-dataset'" in str(info.value)


def test_missing_file_is_not_mistaken_for_a_hub_id(tmp_path):
    with pytest.raises(DatasetError, match="file not found"):
        load_split(tmp_path / "train.jsonl")

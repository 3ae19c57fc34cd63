"""``.tsv`` files are read as tab-separated values (no quoting, as GLUE ships them), never as
JSON Lines; a file with an extension the harness does not know is refused, naming the file and
the supported extensions."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest

from harness.cli import EXIT_FINDINGS, main
from harness.data import load_split
from harness.data.reading import SUFFIX_READERS
from harness.errors import DatasetError

ROWS = [
    ("it 's a \"charming\" and often affecting journey .", "positive"),
    ("unflinchingly bleak , and desperate", "negative"),
    ('"quoted from the start', "negative"),
    ("commas, inside, the cell", "positive"),
]


def _tsv(path: Path, header: str, lines: list[str]) -> Path:
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


def test_tsv_reads_tabs_and_keeps_quotes_as_text(tmp_path: Path):
    path = _tsv(tmp_path / "sst.tsv", "prompt\tcompletion", [f"{text}\t{label}" for text, label in ROWS])
    split = load_split(path, name="train")
    # the oracle: pandas reading the same file as GLUE's loaders do (tab, no quoting, strings)
    frame = pd.read_csv(path, sep="\t", quoting=csv.QUOTE_NONE, dtype=str, keep_default_na=False)
    assert len(split) == len(frame) == len(ROWS)
    assert [e.messages[0]["content"] for e in split.examples] == list(frame["prompt"])
    assert [e.messages[-1]["content"] for e in split.examples] == list(frame["completion"])
    assert [e.line for e in split.examples] == [2, 3, 4, 5]  # file lines, after the header
    assert "unit" not in split.examples[0].meta  # lines, as in a JSONL file


def test_tsv_json_cells_ids_and_metadata_columns(tmp_path: Path):
    messages = [{"role": "user", "content": "Classify: great"}, {"role": "assistant", "content": "positive"}]
    path = _tsv(tmp_path / "chat.tsv", "id\tmessages\tmetadata.source",
                [f"r1\t{json.dumps(messages)}\tweb", f"\t{json.dumps(messages)}\tforum"])
    split = load_split(path, name="eval")
    assert [e.messages for e in split.examples] == [messages, messages]
    assert split.examples[0].id == "r1" and split.examples[1].id != "r1"
    assert [e.meta["record"]["metadata"] for e in split.examples] == [{"source": "web"}, {"source": "forum"}]


def test_tsv_and_csv_of_the_same_rows_give_the_same_examples(tmp_path: Path):
    frame = pd.DataFrame(ROWS, columns=["prompt", "completion"])
    frame.to_csv(tmp_path / "same.csv", index=False)
    _tsv(tmp_path / "same.tsv", "prompt\tcompletion", [f"{text}\t{label}" for text, label in ROWS])
    as_csv, as_tsv = load_split(tmp_path / "same.csv"), load_split(tmp_path / "same.tsv")
    assert [e.messages for e in as_tsv.examples] == [e.messages for e in as_csv.examples]
    assert as_tsv.fingerprint == as_csv.fingerprint


def test_a_ragged_tsv_row_is_an_error_naming_file_and_line(tmp_path: Path):
    path = _tsv(tmp_path / "ragged.tsv", "prompt\tcompletion", ["good\tpositive", "bad\tnegative\textra"])
    with pytest.raises(DatasetError) as caught:
        load_split(path)
    message = str(caught.value)
    assert str(path) in message and "TSV" in message and "invalid JSON" not in message


@pytest.mark.parametrize("name", ["reviews.xlsx", "train.jsonl.gz", "data.tab"])
def test_an_unknown_extension_is_refused_naming_the_file_and_the_supported_ones(tmp_path: Path, name: str,
                                                                                 capsys):
    path = tmp_path / name
    path.write_text('{"prompt": "a", "completion": "b"}\n', encoding="utf-8")
    with pytest.raises(DatasetError) as caught:
        load_split(path)
    message = str(caught.value)
    assert str(path) in message and f"unknown file extension {path.suffix!r}" in message
    for suffix in (".jsonl", ".json", ".csv", ".tsv", ".parquet", ".txt"):
        assert suffix in message
    assert set(SUFFIX_READERS) >= {".jsonl", ".json", ".csv", ".tsv", ".parquet", ".txt"}
    assert main(["data", "validate", str(path)]) == EXIT_FINDINGS
    assert "unknown file extension" in capsys.readouterr().out

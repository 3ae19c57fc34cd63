"""One JSON object per line: each bad line is named by file:line, an unreadable file raises naming it."""

import pytest

from harness.data.objectlines import read_object_lines
from harness.errors import DatasetError


def test_each_bad_line_is_named_and_good_lines_keep_their_numbers(tmp_path):
    path = tmp_path / "outputs.jsonl"
    path.write_text('{"id": "a"}\n\n[1, 2]\n{"id": \n{"id": "b"}\n', encoding="utf-8")
    rows, problems = read_object_lines(path, "outputs")
    assert rows == [(1, {"id": "a"}), (5, {"id": "b"})]
    assert problems[0] == f"{path}:3: expected a JSON object, got list"
    assert problems[1].startswith(f"{path}:4: not valid JSON (")
    assert len(problems) == 2


@pytest.mark.parametrize("make, message", [
    (lambda p: None, "outputs file not found"),
    (lambda p: p.mkdir(), "is a directory, not the outputs file"),
    (lambda p: p.write_bytes(b'{"id": "\xff"}\n'), "not UTF-8 text"),
])
def test_an_unreadable_file_raises_naming_it(tmp_path, make, message):
    path = tmp_path / "outputs.jsonl"
    make(path)
    with pytest.raises(DatasetError, match=message) as raised:
        read_object_lines(path, "outputs")
    assert str(path) in str(raised.value)

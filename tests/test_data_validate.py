"""Validation: every malformed sample is reported with file, line and field, never a traceback."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import warm_python

from harness.cli import main
from harness.data.tokens import (
    MAX_DEFAULT_EPOCHS,
    MAX_TARGET_EXAMPLES,
    MIN_DEFAULT_EPOCHS,
    MIN_TARGET_EXAMPLES,
    TARGET_EPOCHS,
    conversation_tokens,
    default_epochs,
    estimate_tokens,
)
from harness.data.validate import validate_file

HERE = Path(__file__).parent
BAD = HERE / "data_bad"
GOOD = HERE / "data_good"

# file -> (location prefix after the path, field or None, words the message must contain)
EXPECTED = {
    "array_bad_element.json": (":34:", "messages[1].role", "unrecognised role 'robot'"),
    "blank_lines_only.jsonl": (": ", None, "empty file"),
    "content_number.jsonl": (":2:", "messages[0].content", "must be a string (got number)"),
    "deep_nesting.jsonl": (":2:", None, "nested deeper"),
    "duplicate_id.jsonl": (":3:", "id", "already used on line 1"),
    "empty.jsonl": (": ", None, "empty file"),
    "empty_assistant_reply.jsonl": (":2:", "messages[1].content", "empty assistant reply"),
    "instruction_empty_output.jsonl": (":2:", "output", "empty assistant reply"),
    "instruction_input_number.jsonl": (":3:", "input", "must be a string (got number)"),
    "invalid_json_truncated.jsonl": (":2:", None, "invalid JSON"),
    "invalid_utf8.jsonl": (":3:", None, "invalid UTF-8"),
    "json_trailing_comma.json": (":4:", None, "invalid JSON"),
    "lone_surrogate.jsonl": (":2:", None, "lone surrogate"),
    "message_not_object.jsonl": (":2:", "messages[0]", "not an object"),
    "messages_cell_invalid.csv": (":3:", "messages", "invalid JSON"),  # the file line, after the header
    "tab_separated.csv": (":1:", None, "the file looks tab-separated (name it .tsv)"),
    "header_only.csv": (": ", None, "CSV file has a header but no rows"),
    "missing_column.csv": (":1:", None, "missing column 'output' for the instruction format (columns found: 'instruction', 'input')"),
    "messages_not_list.jsonl": (":2:", "messages", "must be a list"),
    "missing_content.jsonl": (":2:", "messages[1].content", "missing key 'content'"),
    "missing_messages.jsonl": (":3:", "messages", "missing 'messages' list"),
    "missing_role.jsonl": (":3:", "messages[1].role", "missing key 'role'"),
    "nan_constant.jsonl": (":2:", None, "NaN"),
    "no_assistant.jsonl": (":3:", "messages", "no assistant message"),
    "not_object.jsonl": (":2:", None, "not a JSON object"),
    "not_parquet.parquet": (": ", None, "cannot read Parquet"),
    "nul_bytes.jsonl": (":2:", None, "NUL byte"),
    "prompt_completion_mixed.jsonl": (":2:", "completion", "both be strings"),
    "ragged_row.csv": (":3:", None, "Expected 3 fields"),
    "system_not_first.jsonl": (":3:", "messages[1].role", "must come first"),
    "text_empty.jsonl": (":2:", "text", "empty text"),
    "unrecognised_key.jsonl": (":4:", "messages[1].tool", "unrecognised key 'tool'"),
    "unrecognised_role.jsonl": (
        ":2:", "messages[1].role",
        "unrecognised role 'bot' (expected one of system, user, assistant, function)"),
    "utf16.jsonl": (":1:", None, "UTF-16"),
    "weight_not_binary.jsonl": (":3:", "messages[1].weight", "weight must be 0 or 1"),
}


def _expected_text(name: str) -> str:
    location, field, _ = EXPECTED[name]
    field_part = f"field {field!r}: " if field else ""
    return f"{BAD / name}{location} {field_part}" if location != ": " else f"{BAD / name}: "


def test_every_bad_sample_has_an_expectation():
    assert sorted(p.name for p in BAD.iterdir()) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_file_exits_1_and_names_line_and_field(name, capsys):
    code = main(["data", "validate", str(BAD / name)])
    out, err = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in out + err
    error_lines = [line for line in out.splitlines()
                   if line.startswith(str(BAD / name)) and ": warning: " not in line
                   and "INVALID" not in line]
    assert error_lines, out
    prefix = _expected_text(name)
    words = EXPECTED[name][2]
    assert any(line.startswith(prefix) and words in line for line in error_lines), (
        prefix, words, error_lines)


def test_bad_folder_through_subprocess():
    files = sorted(str(p) for p in BAD.iterdir())
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    result = warm_python.run(["-m", "harness", "data", "validate", *files], env=env, timeout=120)
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    for name in EXPECTED:
        assert f"\n{_expected_text(name)}" in result.stdout, name


def test_every_bad_file_fails_load_split_with_dataset_error():
    from harness.data import load_split
    from harness.errors import DatasetError

    for name in EXPECTED:
        with pytest.raises(DatasetError) as info:
            load_split(BAD / name)
        assert str(BAD / name) in str(info.value)
        assert info.value.problems, name


def test_clean_file_with_duplicates_exits_0_and_warns_with_all_lines(capsys):
    code = main(["data", "validate", str(GOOD / "duplicates.jsonl")])
    out = capsys.readouterr().out
    assert code == 0
    assert "exact duplicate records on lines 1, 3, 5" in out
    assert "after normalising case and whitespace on lines 2, 4" in out


@pytest.mark.parametrize("name", sorted(p.name for p in GOOD.iterdir()))
def test_good_files_are_valid(name):
    report = validate_file(GOOD / name)
    assert report.ok, report.render()
    assert report.n_examples > 0
    assert report.fingerprint


def test_missing_file_directory_device_and_bad_paths_are_reported(tmp_path, capsys):
    long_name = str(tmp_path / ("x" * 5000))
    code = main(["data", "validate", str(tmp_path / "nope.jsonl"), str(tmp_path), "/dev/null",
                 long_name])
    out, err = capsys.readouterr()
    assert code == 3  # unreadable input is a harness error, as the README documents
    assert f"{tmp_path / 'nope.jsonl'}: file not found" in out
    assert f"{tmp_path}: is a directory" in out
    assert "/dev/null: not a regular file" in out
    assert f"{long_name}: cannot access path: File name too long" in out
    assert "Traceback" not in out + err


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["data", "validate"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["data", "validate", "--max-tokens", "0", "x.jsonl"])
    assert info.value.code == 2
    assert "positive integer" in capsys.readouterr().err


def _chat(user: str, reply: str) -> dict:
    return {"messages": [{"role": "user", "content": user},
                         {"role": "assistant", "content": reply}]}


def test_all_errors_reported_with_cap(tmp_path, capsys):
    path = tmp_path / "many.jsonl"
    lines = [json.dumps({"messages": [{"role": "bot", "content": f"hi {i}"},
                                      {"role": "assistant", "content": "x"}]})
             for i in range(150)]
    path.write_text("\n".join(lines) + "\n")
    report = validate_file(path)
    assert len(report.errors) == 150
    assert [e.line for e in report.errors] == list(range(1, 151))
    assert main(["data", "validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert out.count("unrecognised role 'bot'") == 100
    assert "... and 50 more" in out


def test_very_long_line_is_located(tmp_path):
    path = tmp_path / "long.jsonl"
    long_text = "word " * 400_000
    path.write_text(json.dumps(_chat("q", "a")) + "\n"
                    + json.dumps({"messages": [{"role": "user", "content": long_text},
                                               {"role": "robot", "content": "a"}]})[:-5] + "\n")
    report = validate_file(path)
    assert [(e.line, e.code) for e in report.errors] == [(2, "invalid_json")]


def test_json_output(tmp_path, capsys):
    code = main(["data", "validate", "--json", str(BAD / "unrecognised_role.jsonl"),
                 str(GOOD / "chat.jsonl")])
    payload = json.loads(capsys.readouterr().out)
    assert code == 1
    assert payload["ok"] is False
    bad, good = payload["files"]
    assert bad["errors"][0]["line"] == 2
    assert bad["errors"][0]["field"] == "messages[1].role"
    assert good["ok"] is True and good["token_counts"] == "estimate"


def test_default_epochs_matches_cookbook_formula():
    assert (TARGET_EPOCHS, MIN_TARGET_EXAMPLES, MAX_TARGET_EXAMPLES) == (3, 100, 25000)
    assert (MIN_DEFAULT_EPOCHS, MAX_DEFAULT_EPOCHS) == (1, 25)
    # The cookbook's sample run: 5 examples -> "you'll train for 20 epochs".
    assert default_epochs(5) == 20
    assert default_epochs(1) == 25  # min(25, 100 // 1)
    assert default_epochs(10) == 10  # 30 < 100 -> 100 // 10
    assert default_epochs(50) == 3  # 150 is within [100, 25000]
    assert default_epochs(10_000) == 2  # 30000 > 25000 -> 25000 // 10000
    assert default_epochs(30_000) == 1  # max(1, 0)


def test_conversation_tokens_follow_cookbook_overheads():
    def words(text):
        return len(text.split())

    messages = [{"role": "user", "content": "a b c", "name": "ann"},
                {"role": "assistant", "content": "d e"}]
    # 3 per message + values ("user"=1, "a b c"=3, "ann"=1 +1 for name) + ("assistant"=1, 2) + 3
    assert conversation_tokens(messages, words) == 3 + 1 + 3 + 1 + 1 + 3 + 1 + 2 + 3


def test_estimated_counts_are_marked_and_limit_warns(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps(_chat("x" * 400, "y")) + "\n" + json.dumps(_chat("q", "a")) + "\n")
    report = validate_file(path, max_tokens=50)
    assert not report.counts_exact
    too_long = [w for w in report.warnings if w.code == "too_long"]
    assert [w.line for w in too_long] == [1]
    expected = 3 + estimate_tokens("user") + 100 + 3 + estimate_tokens("assistant") + 1 + 3
    assert f"~{expected} tokens" in too_long[0].message
    text = "\n".join(report.render())
    assert "estimated" in text and "1 examples over the 50-token limit" in text
    assert report.billing_tokens == 50 + (3 + 1 + 1 + 3 + 3 + 1 + 3)


def test_missing_system_and_user_warnings_name_lines(tmp_path):
    path = tmp_path / "t.jsonl"
    rows = [{"messages": [{"role": "system", "content": "s"}, *_chat("q", "a")["messages"]]},
            _chat("q2", "a2"),
            {"messages": [{"role": "assistant", "content": "alone"}]}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    report = validate_file(path)
    codes = {w.code: w for w in report.warnings}
    assert "lines 2, 3" in codes["missing_system"].message
    assert codes["missing_user"].line == 3
    assert (report.n_missing_system, report.n_missing_user) == (2, 1)


def test_exact_counts_with_a_tokenizer(tmp_path):
    from test_data_lint import word_tokenizer

    tokenizer = word_tokenizer(with_markers=True)
    path = tmp_path / "t.jsonl"
    rows = [_chat("the cat sat", "yes"), _chat("a dog", "no no")]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    report = validate_file(path, count_tokens=tokenizer)
    assert report.counts_exact
    lengths = [len(tokenizer.apply_chat_template(r["messages"], tokenize=True,
                                                 return_dict=True)["input_ids"]) for r in rows]
    stats = report.stats["num_total_tokens_per_example"]
    assert (stats["min"], stats["max"]) == (min(lengths), max(lengths))

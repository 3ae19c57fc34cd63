"""`ft-harness cache ls | info | prune`: output, exit codes, and human units."""

from __future__ import annotations

import json
import os
import time
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.cache import CacheStore, format_size, parse_duration, parse_size
from harness.cli import EXIT_HARNESS_ERROR, EXIT_OK, EXIT_USAGE, main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """Run the CLI in-process; argparse usage errors exit through SystemExit."""
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def filled(tmp_path: Path) -> CacheStore:
    store = CacheStore(tmp_path / "cache")
    store.get_or_build("adapter-1", lambda out: (out / "w.bin").write_bytes(b"w" * 3000)
                       and {"loss": 0.5}, description="tiny LoRA")
    store.put_json("gen-1", {"texts": ["a"]}, description="generations")
    store.close()  # the run that filled it is over: nothing is in use
    return store


def test_ls_lists_entries(capsys, filled: CacheStore):
    code, out, _ = run(capsys, "cache", "ls", "--cache-dir", str(filled.root))
    assert code == EXIT_OK
    assert "adapter-1" in out and "tiny LoRA" in out and "gen-1" in out
    assert "2 entries" in out


def test_ls_json_matches_the_store(capsys, filled: CacheStore):
    code, out, _ = run(capsys, "cache", "ls", "--json", "--cache-dir", str(filled.root))
    assert code == EXIT_OK
    assert json.loads(out) == [entry.as_dict() for entry in filled.entries()]


def test_ls_of_an_empty_or_missing_cache(capsys, tmp_path: Path):
    code, out, _ = run(capsys, "cache", "ls", "--cache-dir", str(tmp_path / "none"))
    assert code == EXIT_OK and "empty" in out
    assert not (tmp_path / "none").exists()


def test_default_cache_dir_comes_from_the_environment(capsys, filled: CacheStore, tmp_path,
                                                      monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FT_HARNESS_CACHE", "cache")
    code, out, _ = run(capsys, "cache", "ls", "--json")
    assert code == EXIT_OK and len(json.loads(out)) == 2
    monkeypatch.delenv("FT_HARNESS_CACHE")
    code, out, _ = run(capsys, "cache", "ls", "--json")  # ./.ft-cache does not exist here
    assert code == EXIT_OK and json.loads(out) == []


def test_info_shows_an_entry(capsys, filled: CacheStore):
    code, out, _ = run(capsys, "cache", "info", "adapter-1", "--cache-dir", str(filled.root))
    assert code == EXIT_OK
    assert "status:      ok" in out and "w.bin" in out and '"loss": 0.5' in out
    code, out, _ = run(capsys, "cache", "info", "gen-1", "--json", "--cache-dir",
                       str(filled.root))
    assert code == EXIT_OK and json.loads(out)["kind"] == "json"


def test_info_of_an_unknown_key_exits_3_naming_it(capsys, filled: CacheStore):
    code, _, err = run(capsys, "cache", "info", "nope-123", "--cache-dir", str(filled.root))
    assert code == EXIT_HARNESS_ERROR
    assert "nope-123" in err


def test_info_of_a_corrupt_entry_exits_3(capsys, filled: CacheStore):
    (filled.root / "artifacts" / "adapter-1" / "w.bin").write_bytes(b"x" * 3000)
    code, out, _ = run(capsys, "cache", "info", "adapter-1", "--cache-dir", str(filled.root))
    assert code == EXIT_HARNESS_ERROR and "corrupt" in out


@pytest.mark.parametrize("key", ["../etc", "a/b", "/abs"])
def test_info_of_a_path_like_key_is_a_usage_error(capsys, filled: CacheStore, key: str):
    code, _, err = run(capsys, "cache", "info", key, "--cache-dir", str(filled.root))
    assert code == EXIT_USAGE and "invalid cache key" in err


def test_prune_removes_old_entries(capsys, filled: CacheStore):
    stamp = time.time() - 10 * 86400
    os.utime(filled.root / "artifacts" / "adapter-1" / ".ft-last-used", (stamp, stamp))
    code, out, _ = run(capsys, "cache", "prune", "--older-than", "7d", "--cache-dir",
                       str(filled.root))
    assert code == EXIT_OK and "removed adapter-1" in out
    assert [e.key for e in filled.entries()] == ["gen-1"]


def test_prune_to_a_size_and_dry_run(capsys, filled: CacheStore):
    code, out, _ = run(capsys, "cache", "prune", "--max-size", "0B", "--dry-run",
                       "--cache-dir", str(filled.root))
    assert code == EXIT_OK and "would remove 2 entries" in out
    assert len(filled.entries()) == 2
    code, out, _ = run(capsys, "cache", "prune", "--max-size", "2kB", "--cache-dir",
                       str(filled.root))
    assert code == EXIT_OK
    assert [e.key for e in filled.entries()] == ["gen-1"]  # the 3 kB adapter had to go


@pytest.mark.parametrize(("argv", "message"), [
    (["cache", "prune", "--older-than", "7x"], "invalid duration '7x'"),
    (["cache", "prune", "--older-than", "7"], "invalid duration '7'"),
    (["cache", "prune", "--max-size", "2XB"], "invalid size '2XB'"),
    (["cache", "prune", "--max-size=-1GB"], "invalid size '-1GB'"),
    (["cache", "prune"], "--older-than and/or --max-size"),
    (["cache"], "usage: ft-harness cache"),
    (["cache", "frobnicate"], "invalid choice"),
])
def test_bad_arguments_are_usage_errors(capsys, tmp_path: Path, argv, message):
    code, out, err = run(capsys, *argv, *(["--cache-dir", str(tmp_path)] if len(argv) > 1
                                            and argv[1] == "prune" else []))
    assert code == EXIT_USAGE
    assert message in out + err


# -- human units ------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("30m", timedelta(minutes=30)), ("12h", timedelta(hours=12)), ("7d", timedelta(days=7)),
    ("2w", timedelta(weeks=2)), ("90s", timedelta(seconds=90)), (" 1.5 H ", timedelta(hours=1.5)),
])
def test_parse_duration(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("500MB", 500 * 10**6), ("2GB", 2 * 10**9), ("1.5GiB", 3 * 2**29), ("4096", 4096),
    ("10kb", 10_000), ("1K", 1024), ("3 mib", 3 * 2**20), ("0B", 0),
])
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@given(st.integers(0, 10**6), st.sampled_from(["d", "day", "days", "D"]))
def test_whole_days_parse_exactly(n, unit):
    assert parse_duration(f"{n}{unit}") == timedelta(days=n)


@given(st.text(max_size=12))
def test_any_text_parses_or_raises_a_clear_value_error(text):
    for parse in (parse_size, parse_duration):
        try:
            value = parse(text)
        except ValueError as exc:
            assert repr(text) in str(exc)
        else:
            assert value >= (0 if parse is parse_size else timedelta(0))


def test_oversized_values_are_value_errors():
    with pytest.raises(ValueError, match="too large"):
        parse_size("9" * 400 + "GB")
    with pytest.raises(ValueError, match="too large"):
        parse_duration("9" * 30 + "w")


@pytest.mark.parametrize(("size", "text"), [(0, "0 B"), (999, "999 B"), (1500, "1.5 kB"),
                                            (2 * 10**9, "2.0 GB")])
def test_format_size(size, text):
    assert format_size(size) == text

"""The artifact and JSON store: hits, atomic builds, corruption detected and rebuilt, no-cache mode."""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from pathlib import Path

import pytest
from filelock import FileLock
from hypothesis import given, settings
from hypothesis import strategies as st

import harness.cache.manifest as manifest_module
from harness.cache import (
    CacheCorruptionWarning,
    CacheStore,
    cache_key,
    default_cache_root,
)
from harness.cache.layout import SUPPORTING_FILES, make_cache_root
from harness.errors import CacheError

KEY = cache_key("adapter", {"rank": 8, "base": "tiny"})


class CountingBuilder:
    """Writes a small 'adapter' (a weights file and a config in a sub-folder) and counts calls."""

    def __init__(self, weights: bytes = b"\x00\x01weights" * 100) -> None:
        self.calls = 0
        self.weights = weights

    def __call__(self, out: Path) -> dict:
        self.calls += 1
        (out / "adapter_model.safetensors").write_bytes(self.weights)
        (out / "config").mkdir()
        (out / "config" / "adapter_config.json").write_text('{"r": 8}', encoding="utf-8")
        return {"train_loss": 0.25, "steps": self.calls}


def flip_byte(path: Path, index: int = 3) -> None:
    data = bytearray(path.read_bytes())
    data[index] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.fixture
def store(tmp_path: Path) -> CacheStore:
    return CacheStore(tmp_path / "cache")


def test_miss_then_hit_builds_once(store: CacheStore):
    builder = CountingBuilder()
    first = store.get_or_build(KEY, builder, description="tiny LoRA")
    second = store.get_or_build(KEY, builder)
    assert builder.calls == 1
    assert (first.hit, second.hit) == (False, True)
    assert first.path == second.path == store.root / "artifacts" / KEY
    assert second.metadata == {"train_loss": 0.25, "steps": 1}
    assert (second.path / "adapter_model.safetensors").read_bytes() == builder.weights
    assert store.stats() == {"adapter": {"hits": 1, "misses": 1, "rebuilt_corrupt": 0}}


def test_metadata_reads_back_the_same_on_a_miss_and_a_hit(store: CacheStore):
    returned = {"history": (0.5, 0.25), "eval_loss": float("nan"), "labels": ["a"]}
    built = store.get_or_build(KEY, lambda out: (out / "w").write_text("x") and returned)
    again = CacheStore(store.root).get_or_build(KEY, CountingBuilder())
    assert again.hit
    for metadata in (built.metadata, again.metadata):
        assert metadata["history"] == [0.5, 0.25] and metadata["labels"] == ["a"]
        assert metadata["eval_loss"] is None  # strict JSON: a non-finite number is stored as null
    manifest = (again.path / ".ft-manifest.json").read_text(encoding="utf-8")
    assert "NaN" not in manifest


def test_manifest_records_every_file(store: CacheStore):
    builder = CountingBuilder()
    result = store.get_or_build(KEY, builder, description="tiny LoRA")
    manifest = json.loads((result.path / ".ft-manifest.json").read_text())
    assert manifest["key"] == KEY
    assert manifest["description"] == "tiny LoRA"
    assert manifest["metadata"] == {"train_loss": 0.25, "steps": 1}
    assert abs(manifest["created"] - time.time()) < 60
    assert manifest["files"] == {
        "adapter_model.safetensors": {"size": len(builder.weights),
                                      "sha256": hashlib.sha256(builder.weights).hexdigest()},
        "config/adapter_config.json": {"size": 8,
                                       "sha256": hashlib.sha256(b'{"r": 8}').hexdigest()},
    }


def test_cache_folder_is_created_with_supporting_files(store: CacheStore):
    assert not store.root.exists()  # nothing is created until something is written
    store.get_or_build(KEY, CountingBuilder())
    for name, content in SUPPORTING_FILES.items():
        assert (store.root / name).read_bytes() == content
    assert (store.root / ".gitignore").read_text().strip().endswith("*")


def test_supporting_files_are_added_to_a_folder_made_by_someone_else(tmp_path: Path):
    (tmp_path / "cache" / "openai-jobs").mkdir(parents=True)
    CacheStore(tmp_path / "cache").put_json("gen-1", 1)
    assert (tmp_path / "cache" / ".gitignore").read_bytes() == SUPPORTING_FILES[".gitignore"]
    assert (tmp_path / "cache" / "CACHEDIR.TAG").exists()


def test_making_the_root_twice_or_concurrently_is_harmless(tmp_path: Path):
    target = tmp_path / "deep" / "cache"
    make_cache_root(target)
    (target / "keep").write_text("x")
    make_cache_root(target)  # the loser of a race: its staging copy is discarded
    assert (target / "keep").read_text() == "x"
    assert [p.name for p in target.parent.iterdir()] == ["cache"]


class Boom(RuntimeError):
    pass


@pytest.mark.parametrize("error", [Boom("training crashed"), KeyboardInterrupt()])
def test_a_builder_that_raises_leaves_nothing_behind(store: CacheStore, error: BaseException):
    def failing(out: Path) -> None:
        (out / "half-written.bin").write_bytes(b"partial")
        raise error

    with pytest.raises(type(error)):
        store.get_or_build(KEY, failing)
    assert not (store.root / "artifacts" / KEY).exists()
    assert list((store.root / "tmp").iterdir()) == []
    assert store.entries() == []
    builder = CountingBuilder()
    assert store.get_or_build(KEY, builder).hit is False and builder.calls == 1


@pytest.mark.parametrize("returned", [["not", "a", "mapping"], {"x": object()}])
def test_bad_builder_metadata_is_refused_and_nothing_kept(store: CacheStore, returned):
    with pytest.raises(TypeError, match=KEY):
        store.get_or_build(KEY, lambda out: (out / "f").write_text("x") and returned)
    assert store.entries() == []
    assert list((store.root / "tmp").iterdir()) == []


@pytest.mark.parametrize("name", [".ft-manifest.json", ".ft-last-used"])
def test_builder_may_not_write_the_store_s_own_files(store: CacheStore, name: str):
    with pytest.raises(CacheError, match="reserves"):
        store.get_or_build(KEY, lambda out: (out / name).write_text("{}") and None)
    assert store.entries() == []


def test_builder_may_not_leave_symlinks(store: CacheStore, tmp_path: Path):
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"x")
    with pytest.raises(CacheError, match="symlink"):
        store.get_or_build(KEY, lambda out: (out / "link").symlink_to(outside))
    assert store.entries() == []


def _corrupt_content(entry: Path) -> None:
    flip_byte(entry / "adapter_model.safetensors")


def _corrupt_content_keep_mtime(entry: Path) -> None:
    path = entry / "adapter_model.safetensors"
    stat = path.stat()
    flip_byte(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def _delete_file(entry: Path) -> None:
    (entry / "config" / "adapter_config.json").unlink()


def _add_file(entry: Path) -> None:
    (entry / "stray.bin").write_bytes(b"?")


def _truncate_file(entry: Path) -> None:
    path = entry / "adapter_model.safetensors"
    path.write_bytes(path.read_bytes()[:-1])


def _delete_manifest(entry: Path) -> None:
    (entry / ".ft-manifest.json").unlink()


def _garble_manifest(entry: Path) -> None:
    flip_byte(entry / ".ft-manifest.json", index=0)


@pytest.mark.parametrize("damage", [_corrupt_content, _corrupt_content_keep_mtime, _delete_file,
                                    _add_file, _truncate_file, _delete_manifest,
                                    _garble_manifest])
@pytest.mark.parametrize("fresh_store", [False, True], ids=["same-store", "new-store"])
def test_a_damaged_entry_is_reported_discarded_and_rebuilt(tmp_path: Path, damage, fresh_store):
    builder = CountingBuilder()
    store = CacheStore(tmp_path / "cache")
    entry = store.get_or_build(KEY, builder).path
    damage(entry)
    reader = CacheStore(tmp_path / "cache") if fresh_store else store
    with pytest.warns(CacheCorruptionWarning, match=KEY):
        result = reader.get_or_build(KEY, builder)
    assert result.hit is False and result.rebuilt_corrupt is True
    assert builder.calls == 2
    assert (result.path / "adapter_model.safetensors").read_bytes() == builder.weights
    assert reader.stats()["adapter"]["rebuilt_corrupt"] == 1
    assert list((tmp_path / "cache" / "trash").iterdir()) == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert reader.get_or_build(KEY, builder).hit is True


def test_a_file_in_place_of_an_entry_is_replaced(store: CacheStore):
    store.get_or_build("other-1", CountingBuilder())  # creates the folders
    (store.root / "artifacts" / KEY).write_text("not a directory")
    with pytest.warns(CacheCorruptionWarning):
        result = store.get_or_build(KEY, CountingBuilder())
    assert result.rebuilt_corrupt and result.path.is_dir()


def test_repeat_hits_in_one_process_skip_hashing_only_for_untouched_files(
        store: CacheStore, monkeypatch: pytest.MonkeyPatch):
    hashed: list[Path] = []
    real_hash_file = manifest_module.hash_file

    def counting_hash_file(path, **kwargs):
        hashed.append(Path(path))
        return real_hash_file(path, **kwargs)

    monkeypatch.setattr(manifest_module, "hash_file", counting_hash_file)
    builder = CountingBuilder()
    entry = store.get_or_build(KEY, builder).path
    hashed.clear()
    # Files written moments ago are "racy": their times cannot prove they were not rewritten.
    assert store.get_or_build(KEY, builder).hit
    assert len(hashed) == 2
    # Pretend they were hashed long after their last change: now the signature is trusted.
    monkeypatch.setattr(manifest_module, "RACY_WINDOW_S", -3600.0)
    hashed.clear()
    assert store.get_or_build(KEY, builder).hit
    assert store.get_or_build(KEY, builder).hit
    assert hashed == []
    time.sleep(0.05)  # let the coarse file clock tick so the write below changes ctime
    _corrupt_content_keep_mtime(entry)
    with pytest.warns(CacheCorruptionWarning):
        assert store.get_or_build(KEY, builder).rebuilt_corrupt


def test_last_used_is_touched_on_hit(store: CacheStore):
    entry = store.get_or_build(KEY, CountingBuilder()).path
    marker = entry / ".ft-last-used"
    os.utime(marker, (1_000_000, 1_000_000))
    store.get_or_build(KEY, CountingBuilder())
    assert marker.stat().st_mtime > time.time() - 60


@pytest.mark.parametrize("key", ["../escape", "a/b", "/etc", ".."])
def test_invalid_keys_are_refused_before_anything_is_written(store: CacheStore, key: str):
    with pytest.raises(ValueError, match="invalid cache key"):
        store.get_or_build(key, CountingBuilder())
    with pytest.raises(ValueError, match="invalid cache key"):
        store.put_json(key, 1)
    with pytest.raises(ValueError, match="invalid cache key"):
        store.get_json(key)
    assert not store.root.exists()


# -- JSON entries -----------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=40)
@given(json_values)
def test_json_round_trip(tmp_path_factory, value):
    store = CacheStore(tmp_path_factory.mktemp("json"))
    store.put_json("gen-1", value)
    assert store.get_json("gen-1") == value
    assert [p.name for p in (store.root / "json").iterdir()] == ["gen-1.json"]  # no temp files


def test_json_entries_are_strict_json(store: CacheStore):
    """A non-finite number is stored as null, never as a bare NaN / Infinity token."""
    store.put_json("gen-2", {"loss": float("nan"), "scores": [1.5, float("inf"), -float("inf")]})
    text = (store.root / "json" / "gen-2.json").read_text(encoding="utf-8")
    assert "NaN" not in text and "Infinity" not in text
    assert store.get_json("gen-2") == {"loss": None, "scores": [1.5, None, None]}


def test_json_miss_hit_and_stats(store: CacheStore):
    assert store.get_json("generations-abc") is None
    store.put_json("generations-abc", {"texts": ["a", "b"]}, description="eval generations")
    assert store.get_json("generations-abc") == {"texts": ["a", "b"]}
    assert store.stats() == {"generations": {"hits": 1, "misses": 1, "rebuilt_corrupt": 0}}
    [entry] = store.entries()
    assert (entry.kind, entry.description) == ("json", "eval generations")


@pytest.mark.parametrize("damage", [
    lambda raw: raw[:-3],                                   # truncated body
    lambda raw: raw[:-2] + bytes([raw[-2] ^ 0x01]) + raw[-1:],  # one byte of the body flipped
    lambda raw: b"garbage" + raw,                           # header unreadable
    lambda raw: raw.split(b"\n", 1)[1],                     # header missing
])
def test_a_corrupt_json_entry_is_a_miss_and_is_overwritten(store: CacheStore, damage):
    store.put_json("scores-1", {"accuracy": 0.875, "labels": ["pos", "neg"]})
    path = store.root / "json" / "scores-1.json"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.warns(CacheCorruptionWarning, match="scores-1"):
        assert store.get_json("scores-1") is None
    assert not path.exists()
    assert store.stats()["scores"] == {"hits": 0, "misses": 1, "rebuilt_corrupt": 1}
    store.put_json("scores-1", {"accuracy": 0.5})
    assert store.get_json("scores-1") == {"accuracy": 0.5}


def test_unserialisable_json_is_refused_and_nothing_written(store: CacheStore):
    with pytest.raises(TypeError, match="scores-1"):
        store.put_json("scores-1", {"bad": object()})
    assert store.get_json("scores-1") is None
    assert not (store.root / "json").exists() or list((store.root / "json").iterdir()) == []


def test_get_or_compute_json_computes_once(store: CacheStore):
    calls = []

    def compute():
        calls.append(1)
        return [1, 2, 3]

    assert store.get_or_compute_json("metric-1", compute) == [1, 2, 3]
    assert store.get_or_compute_json("metric-1", compute) == [1, 2, 3]
    assert len(calls) == 1
    assert store.stats()["metric"] == {"hits": 1, "misses": 1, "rebuilt_corrupt": 0}


# -- no-cache mode ----------------------------------------------------------------------------


def test_disabled_store_builds_every_time_and_never_touches_the_folder(tmp_path: Path):
    root = tmp_path / "cache"
    builder = CountingBuilder()
    with CacheStore(root, enabled=False) as store:
        first = store.get_or_build(KEY, builder)
        second = store.get_or_build(KEY, builder)
        assert builder.calls == 2
        assert not first.hit and not second.hit and first.path != second.path
        assert (first.path / "adapter_model.safetensors").read_bytes() == builder.weights
        assert first.metadata == {"train_loss": 0.25, "steps": 1}
        assert root not in first.path.parents
        store.put_json("gen-1", [1])
        assert store.get_json("gen-1") is None
        assert store.get_or_compute_json("gen-1", lambda: [2]) == [2]
        assert store.stats()["adapter"] == {"hits": 0, "misses": 2, "rebuilt_corrupt": 0}
        assert store.entries() == [] and store.info(KEY) is None
    assert not root.exists()
    assert not first.path.exists() and not second.path.exists()


def test_disabled_store_cleans_up_after_a_failing_builder(tmp_path: Path):
    seen: list[Path] = []

    def failing(out: Path) -> None:
        seen.append(out)
        raise Boom("no")

    with CacheStore(tmp_path / "cache", enabled=False) as store, pytest.raises(Boom):
        store.get_or_build(KEY, failing)
    assert not seen[0].exists()


# -- where the cache lives --------------------------------------------------------------------


def test_default_cache_root_honours_the_environment(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("FT_HARNESS_CACHE", raising=False)
    assert default_cache_root(tmp_path) == tmp_path / ".ft-cache"
    monkeypatch.setenv("FT_HARNESS_CACHE", str(tmp_path / "elsewhere"))
    assert default_cache_root(tmp_path) == tmp_path / "elsewhere"
    monkeypatch.setenv("FT_HARNESS_CACHE", "relative/cache")
    assert default_cache_root(tmp_path) == tmp_path / "relative" / "cache"
    monkeypatch.setenv("FT_HARNESS_CACHE", "  ")
    assert default_cache_root(tmp_path) == tmp_path / ".ft-cache"


def test_a_bounded_wait_for_a_busy_key_fails_with_a_clear_error(tmp_path: Path):
    store = CacheStore(tmp_path / "cache", lock_timeout=0.2)
    store.get_or_build("other-1", CountingBuilder())  # creates the folders
    with FileLock(store.root / "locks" / f"{KEY}.lock"), pytest.raises(CacheError,
                                                                       match=KEY) as caught:
        store.get_or_build(KEY, CountingBuilder())
    assert "locked by another process" in str(caught.value)

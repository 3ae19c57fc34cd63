"""Cache keys and content hashes: stable, sensitive to every field, secret-free, confined."""

from __future__ import annotations

import copy
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from harness.cache import (
    cache_key,
    canonical_json,
    hash_directory,
    hash_file,
    namespace_of,
    validate_key,
)
from harness.cache.layout import CacheLayout
from harness.secrets import looks_like_secret_name

scalars = (st.none() | st.booleans() | st.integers() | st.text(max_size=12)
           | st.floats(allow_nan=False, allow_infinity=False))
plain_names = st.text(max_size=8).filter(lambda name: not looks_like_secret_name(name))
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(plain_names, inner, max_size=4),
    max_leaves=12,
)
field_names = st.sampled_from(["lr", "rank", "alpha", "epochs", "seed", "base", "data", "labels"])
payloads = st.dictionaries(field_names, json_values, min_size=1)


def _reversed_order(value):
    """An equal value whose mappings were built in the opposite insertion order."""
    if isinstance(value, dict):
        return {k: _reversed_order(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reversed_order(item) for item in value]
    return value


def _same(a, b) -> bool:
    """Equal as JSON data: same types and values all the way down (True is not 1)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b and (not isinstance(a, float) or repr(a) == repr(b))


@given(payloads)
def test_equal_payloads_give_equal_keys(payload):
    twin = _reversed_order(copy.deepcopy(payload))
    assert cache_key("adapter", payload) == cache_key("adapter", twin)


@given(payloads, st.data())
def test_changing_any_field_changes_the_key(payload, data):
    name = data.draw(st.sampled_from(sorted(payload)))
    replacement = data.draw(json_values)
    assume(not _same(payload[name], replacement))
    changed = {**payload, name: replacement}
    assert cache_key("adapter", payload) != cache_key("adapter", changed)


@given(payloads, field_names, json_values)
def test_adding_or_removing_a_field_changes_the_key(payload, name, value):
    assume(name not in payload)
    assert cache_key("adapter", payload) != cache_key("adapter", {**payload, name: value})


@given(st.floats(allow_nan=False))
def test_floats_are_repr_stable(number):
    assert cache_key("m", {"x": number}) == cache_key("m", {"x": float(repr(number))})


def test_key_shape_and_namespace():
    key = cache_key("lora-adapter", {"rank": 8})
    assert re.fullmatch(r"lora-adapter-[0-9a-f]{40}", key)
    assert namespace_of(key) == "lora-adapter"
    assert cache_key("other", {"rank": 8}) != key
    # a list's order matters; a tuple and a list with the same items are the same payload
    assert cache_key("m", {"x": [1, 2]}) != cache_key("m", {"x": [2, 1]})
    assert cache_key("m", {"x": (1, 2)}) == cache_key("m", {"x": [1, 2]})
    assert cache_key("m", {"x": 1}) != cache_key("m", {"x": 1.0})
    assert cache_key("m", {"x": 1}) != cache_key("m", {"x": True})


def test_canonical_json_is_sorted_and_compact():
    text = canonical_json({"b": 1, "a": {"d": 0.1, "c": None}})
    assert text == json.dumps({"a": {"c": None, "d": 0.1}, "b": 1}, separators=(",", ":"))


@pytest.mark.parametrize("name", ["api_key", "OPENAI_API_KEY", "apiKey", "Authorization",
                                  "token", "hf_token", "access-token", "password",
                                  "client_secret", "secret", "private_key", "credentials"])
def test_secret_fields_are_refused_and_never_echoed(name):
    payload = {"model": "x", "endpoint": {"url": "http://127.0.0.1", name: "hunter2-value"}}
    with pytest.raises(ValueError, match="secret") as caught:
        cache_key("endpoint", payload)
    assert name in str(caught.value)
    assert "hunter2" not in str(caught.value)


@given(st.from_regex(r"[a-z]{0,6}", fullmatch=True), st.sampled_from(["_", "-", "."]),
       st.sampled_from(["api_key", "API-KEY", "password", "access_token", "client_secret"]))
def test_a_secret_word_anywhere_in_a_field_name_is_caught(prefix, separator, secret):
    name = f"{prefix}{separator}{secret}" if prefix else secret
    with pytest.raises(ValueError, match="secret"):
        cache_key("m", {"outer": {name: "value"}})


@pytest.mark.parametrize("name", ["max_new_tokens", "pad_token", "eos_token", "tokenizer",
                                  "num_tokens", "key_order", "monkey", "keywords"])
def test_ordinary_fields_that_mention_tokens_are_allowed(name):
    assert cache_key("gen", {name: "<pad>"}).startswith("gen-")


@pytest.mark.parametrize("value", ["sk-" + "A1b2" * 10, "hf_" + "x" * 34,
                                   "Bearer abcdefghijklmnopqrstuvwxyz"])
def test_credential_shaped_values_are_refused_and_never_echoed(value):
    with pytest.raises(ValueError, match="credential") as caught:
        cache_key("endpoint", {"headers": [value]})
    assert value not in str(caught.value)


@pytest.mark.parametrize("payload", [{1: "x"}, {"x": {1, 2}}, {"x": Path("a")}, {"x": b"raw"},
                                     {"x": object()}])
def test_values_without_a_stable_encoding_are_refused(payload):
    with pytest.raises(TypeError, match="cache key payload"):
        cache_key("m", payload)


@pytest.mark.parametrize("namespace", ["", "Adapter", "a/b", "../x", "a b", "-a", "a--b", "x" * 65])
def test_bad_namespaces_are_refused(namespace):
    with pytest.raises(ValueError, match="namespace"):
        cache_key(namespace, {})


@pytest.mark.parametrize("key", ["", "../x", "a/b", "/abs", "..", ".hidden", "a\\b", "a..b",
                                 "-x", "a b", "x" * 201, "a\x00b"])
def test_keys_that_could_escape_the_folder_are_refused(key):
    with pytest.raises(ValueError, match="invalid cache key"):
        validate_key(key)


@given(st.text(min_size=1, max_size=40))
def test_an_accepted_key_always_stays_inside_the_cache(tmp_path_factory, key):
    try:
        validate_key(key)
    except ValueError:
        return
    root = tmp_path_factory.getbasetemp() / "cache"
    layout = CacheLayout(root)
    for path in (layout.artifact_dir(key), layout.json_file(key), layout.lock_file(key)):
        assert path.resolve().parent.parent == root.resolve()


def test_library_versions_come_from_metadata_without_importing_torch():
    code = ("import json, sys, harness.cache as c; v = c.library_versions(); "
            "print(json.dumps(v)); print('torch' in sys.modules); "
            "import datasets, harness; print(datasets.__version__, harness.__version__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    versions = json.loads(out[0])
    assert sorted(versions) == sorted(["torch", "transformers", "peft", "trl", "datasets",
                                       "harness"])
    assert all(isinstance(v, str) and v for v in versions.values())  # the stack is installed
    assert out[1] == "False"
    assert out[2] == f"{versions['datasets']} {versions['harness']}"


# -- content hashes ---------------------------------------------------------------------------


def _write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


@given(st.binary(max_size=5000), st.integers(1, 64))
def test_hash_file_equals_hashlib_for_any_chunk_size(tmp_path_factory, data, chunk):
    path = tmp_path_factory.mktemp("h") / "blob"
    path.write_bytes(data)
    assert hash_file(path, chunk_size=chunk) == hashlib.sha256(data).hexdigest()


file_trees = st.dictionaries(st.sampled_from(["a.bin", "b.json", "sub/c.txt", "sub/d/e.bin"]),
                             st.binary(max_size=64), min_size=1)


@settings(max_examples=30)
@given(file_trees)
def test_hash_directory_depends_on_content_not_location_or_creation_order(tmp_path_factory,
                                                                          files):
    first = _write_tree(tmp_path_factory.mktemp("one"), files)
    second = _write_tree(tmp_path_factory.mktemp("two"), dict(reversed(list(files.items()))))
    assert hash_directory(first) == hash_directory(second)


@settings(max_examples=30)
@given(file_trees, st.data())
def test_hash_directory_changes_when_any_file_changes(tmp_path_factory, files, data):
    base = hash_directory(_write_tree(tmp_path_factory.mktemp("base"), files))
    victim = data.draw(st.sampled_from(sorted(files)))
    edited = {**files, victim: files[victim] + b"!"}
    renamed = {("z-" + k if k == victim else k): v for k, v in files.items()}
    added = {**files, "extra.txt": b""}
    for variant in (edited, renamed, added):
        assert hash_directory(_write_tree(tmp_path_factory.mktemp("v"), variant)) != base


def test_hash_directory_keeps_file_boundaries(tmp_path):
    one = _write_tree(tmp_path / "one", {"a": b"ab", "b": b"c"})
    two = _write_tree(tmp_path / "two", {"a": b"a", "b": b"bc"})
    assert hash_directory(one) != hash_directory(two)


def test_hash_directory_include_and_bookkeeping(tmp_path):
    weights = _write_tree(tmp_path / "w", {"model.safetensors": b"w", "tokenizer.json": b"t",
                                           "README.md": b"r"})
    only = _write_tree(tmp_path / "only", {"model.safetensors": b"w", "tokenizer.json": b"t"})
    include = ["*.safetensors", "tokenizer*"]
    assert hash_directory(weights, include=include) == hash_directory(only)
    assert hash_directory(weights) != hash_directory(only)
    (only / ".ft-manifest.json").write_text("{}")
    (only / ".ft-last-used").touch()
    assert hash_directory(weights, include=include) == hash_directory(only)


def test_hash_directory_refuses_a_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a directory"):
        hash_directory(tmp_path / "absent")

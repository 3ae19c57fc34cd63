"""A model's identity is its content: the same adapter written beside another copy of its base (another
cache folder, another machine) hashes equal; any other change to its config still changes the hash."""

import json

from harness.cache.hashing import hash_directory


def _adapter(folder, base_path, r=8, extra=b""):
    folder.mkdir(parents=True)
    config = {"base_model_name_or_path": base_path, "peft_type": "LORA", "r": r, "target_modules": ["q_proj"]}
    (folder / "adapter_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    (folder / "adapter_model.safetensors").write_bytes(b"weights" + extra)
    return folder


def test_the_same_adapter_beside_another_base_path_hashes_equal(tmp_path):
    here = _adapter(tmp_path / "a", "/work/cache/artifacts/base-1")
    there = _adapter(tmp_path / "b", "/tmp/ci-clone/.ft-cache/artifacts/base-1")
    assert (here / "adapter_config.json").read_bytes() != (there / "adapter_config.json").read_bytes()
    assert hash_directory(here) == hash_directory(there)


def test_any_other_config_field_or_the_weights_still_change_the_hash(tmp_path):
    reference = hash_directory(_adapter(tmp_path / "a", "/base"))
    assert hash_directory(_adapter(tmp_path / "rank", "/base", r=16)) != reference
    assert hash_directory(_adapter(tmp_path / "weights", "/base", extra=b"!")) != reference


def test_a_config_that_is_no_json_object_is_hashed_as_its_bytes(tmp_path):
    folder = tmp_path / "odd"
    folder.mkdir()
    (folder / "adapter_config.json").write_text("[1, 2]", encoding="utf-8")
    first = hash_directory(folder)
    (folder / "adapter_config.json").write_text("[1, 3]", encoding="utf-8")
    assert hash_directory(folder) != first

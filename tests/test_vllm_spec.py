"""``engine = "vllm"`` and the ``vllm`` table: checked when the spec loads, named by key path;
a suite-level engine reaches its local candidates only."""

from __future__ import annotations

import pytest

from harness.errors import SpecError
from harness.spec import parse_spec

SUITE = {"task": "generation", "eval": "eval.jsonl"}


def _spec(suite: dict, candidates: dict):
    return parse_spec({"suites": {"s": {**SUITE, **suite, "candidates": candidates}}}, "spec.toml")


def test_candidate_engine_and_vllm_table_are_kept():
    spec = _spec({}, {"b": {"kind": "base", "engine": "vllm", "vllm": {"base_url": "http://127.0.0.1:8000/v1",
                                                                       "verify_sample": 8}}})
    options = spec.suites["s"].candidates["b"].options
    assert options["engine"] == "vllm" and options["vllm"]["verify_sample"] == 8


@pytest.mark.parametrize(("vllm", "message"), [
    ({"base_uri": "x"}, r"candidates\.b\.vllm\.base_uri: unknown key"),
    ({"verify_sample": -1}, r"candidates\.b\.vllm\.verify_sample: expected a whole number >= 0"),
    ({"concurrency": 0}, r"candidates\.b\.vllm\.concurrency: expected a whole number >= 1"),
    ({"extra_args": "--enforce-eager"}, r"candidates\.b\.vllm\.extra_args: expected a list of strings"),
    ({"startup_timeout_s": 0}, r"candidates\.b\.vllm\.startup_timeout_s: expected a positive number"),
])
def test_bad_vllm_settings_are_refused_at_load_by_key_path(vllm, message):
    with pytest.raises(SpecError, match=message):
        _spec({}, {"b": {"kind": "base", "engine": "vllm", "vllm": vllm}})


def test_an_unknown_engine_is_refused():
    with pytest.raises(SpecError, match=r"candidates\.b\.engine: expected one of 'transformers', 'vllm', got 'tgi'"):
        _spec({}, {"b": {"kind": "base", "engine": "tgi"}})


def test_engine_is_refused_on_kinds_it_cannot_serve():
    with pytest.raises(SpecError, match=r"candidates\.e.*engine"):
        _spec({}, {"e": {"kind": "endpoint", "model": "m", "engine": "vllm"}})


def test_suite_engine_reaches_local_candidates_and_a_candidate_may_opt_out():
    spec = _spec({"engine": "vllm", "vllm": {"max_model_len": 128, "concurrency": 4}},
                 {"b": {"kind": "base"}, "t": {"kind": "base", "engine": "transformers"},
                  "l": {"kind": "lora", "vllm": {"concurrency": 2}},
                  "e": {"kind": "endpoint", "model": "m", "base_url": "http://127.0.0.1:1/v1"}})
    candidates = spec.suites["s"].candidates
    assert candidates["b"].options["engine"] == "vllm"
    assert candidates["b"].options["vllm"] == {"max_model_len": 128, "concurrency": 4}
    assert candidates["t"].options["engine"] == "transformers"
    assert candidates["l"].options["vllm"] == {"max_model_len": 128, "concurrency": 2}  # its own key wins
    assert "engine" not in candidates["e"].options


def test_a_bad_suite_vllm_table_is_named_at_the_suite():
    with pytest.raises(SpecError, match=r"suites\.s\.vllm\.port: expected a whole number >= 1"):
        _spec({"engine": "vllm", "vllm": {"port": "8000"}}, {"b": {"kind": "base"}})


def test_a_vllm_table_without_the_vllm_engine_is_refused_not_ignored():
    with pytest.raises(SpecError, match=r"candidates\.b\.vllm: a vllm table is used only with engine = \"vllm\""):
        _spec({}, {"b": {"kind": "base", "vllm": {"concurrency": 2}}})
    with pytest.raises(SpecError, match=r"suites\.s\.vllm: no candidate of this suite uses engine = \"vllm\""):
        _spec({"vllm": {"concurrency": 2}}, {"b": {"kind": "base"}})

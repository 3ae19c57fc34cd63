"""Names and paths: output-file collisions and empty names refused at load, padded and invisible
labels refused, a BOM named, one rule for the --ft-* paths, strict booleans over HTTP, and
`ft-harness evaluate` refusing the slice problems pytest refuses."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from miniproject import make_project

from harness.cli import main
from harness.errors import SpecError
from harness.plugin import session_options
from harness.serve.runtime import serve_in_thread
from harness.serve.scripted import ScriptedBackend
from harness.spec import load_spec

SPEC = """
[suites.s]
task = "classification"
labels = ["positive", "negative"]
eval = "eval.jsonl"

[suites.s.candidates.base]
kind = "base"
"""


def _spec(tmp_path: Path, text: str, *, encoding: str = "utf-8") -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(text, encoding=encoding)
    (tmp_path / "eval.jsonl").write_text("".join(
        json.dumps({"messages": [{"role": "user", "content": f"r{i}"},
                                 {"role": "assistant", "content": "positive" if i % 2 else "negative"}]}) + "\n"
        for i in range(4)), encoding="utf-8")
    return path


@pytest.mark.parametrize(("extra", "named"), [
    ('\n[suites.s.candidates."a b"]\nkind = "base"\n[suites.s.candidates."a-b"]\nkind = "base"\n',
     "candidates 'a b' and 'a-b' would write the same files"),
    ('\n[suites.s.candidates.""]\nkind = "base"\n', "suites.s.candidates.'': a candidate name must be non-empty"),
    ('\n[suites.s.candidates." lora"]\nkind = "base"\n', "a candidate name must be non-empty text without"),
    ('\n[suites.s.candidates."???"]\nkind = "base"\n', "a candidate name needs at least one letter"),
    ('\n[suites."s!"]\ntask = "generation"\neval = "eval.jsonl"\n', "suites 's' and 's!' would write the same files"),
])
def test_names_that_collide_or_are_empty_are_refused_at_load(tmp_path, extra, named):
    with pytest.raises(SpecError) as caught:
        load_spec(_spec(tmp_path, SPEC + extra))
    assert named in str(caught.value)


@pytest.mark.parametrize(("labels", "named"), [
    ('["positive", "\\u200b"]', "U+200B"),
    ('["positive", "nega\\u200dtive"]', "U+200D"),
    ('[" positive", "negative"]', "starts or ends with whitespace"),
    ('["positive", "negative\\t"]', "starts or ends with whitespace"),
])
def test_padded_or_invisible_labels_are_refused(tmp_path, labels, named):
    with pytest.raises(SpecError) as caught:
        load_spec(_spec(tmp_path, SPEC.replace('["positive", "negative"]', labels)))
    assert "suites.s.labels" in str(caught.value) and named in str(caught.value)


def test_a_byte_order_mark_is_named(tmp_path):
    with pytest.raises(SpecError) as caught:
        load_spec(_spec(tmp_path, SPEC, encoding="utf-8-sig"))
    assert "byte-order mark (BOM)" in str(caught.value)


def _config(root: Path, invoked: Path, **given) -> SimpleNamespace:
    options = {"capture": "fd", "verbose": 0, "--ft-repeat": 1, **given}
    ini = {"ft_spec": "fixtures/candidates.toml", "ft_reports_dir": "reports"}
    return SimpleNamespace(rootpath=root, invocation_params=SimpleNamespace(dir=invoked),
                           getoption=lambda name: options.get(name), getini=lambda name: ini[name])


def test_command_line_paths_resolve_against_the_working_directory_ini_ones_against_the_rootdir(tmp_path):
    root, invoked = tmp_path / "root", tmp_path / "root" / "sub"
    given = session_options(_config(root, invoked, **{"--ft-spec": "my.toml", "--ft-reports-dir": "out",
                                                      "--ft-cache-dir": "cache", "--ft-baseline": "b.json"}))
    assert (given.spec_path, given.reports_dir) == (invoked / "my.toml", invoked / "out")
    assert (given.cache_dir, given.baseline_path) == (invoked / "cache", invoked / "b.json")
    defaults = session_options(_config(root, invoked))
    assert (defaults.spec_path, defaults.reports_dir) == (root / "fixtures/candidates.toml", root / "reports")


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/chat/completions", {"stream": "yes"}),
    ("/v1/chat/completions", {"stream": 1}),
    ("/v1/chat/completions", {"stream": True, "stream_options": {"include_usage": "no"}}),
    ("/v1/completions", {"echo": 1}),
])
def test_booleans_are_strict_over_http(path, body):
    base = {"model": "base", "max_tokens": 2}
    base.update({"messages": [{"role": "user", "content": "hi"}]} if "chat" in path else {"prompt": "hi"})
    with serve_in_thread(ScriptedBackend("base")) as srv:
        reply = httpx.post(srv.base_url.removesuffix("/v1") + path, json={**base, **body}, timeout=30)
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"]["type"] == "invalid_request_error"


def test_evaluate_refuses_the_slice_problems_pytest_refuses(tmp_path, capsys):
    spec = make_project(tmp_path / "p")
    spec.write_text(spec.read_text() + '\n[suites.mini.slices]\ncat = { by = "metadata", field = "category" }\n')
    code = main(["evaluate", "--spec", str(spec), "--suite", "mini", "--candidate", "lora",
                 "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert code == 3, err
    assert "slice 'cat' reads metadata.category" in err and "eval.jsonl" in err
    assert not (tmp_path / "cache" / "artifacts").exists() or not any(
        p.name.startswith("adapter-") for p in (tmp_path / "cache" / "artifacts").iterdir())

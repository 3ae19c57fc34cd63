"""A server state directory is not trusted blindly: every record is type-checked when it loads and
every stored path must stay inside its folder (refused with exit 3 naming the record); an upload
whose bytes were deleted answers 404, not 500."""

from __future__ import annotations

import json
import os
from pathlib import Path

import openai
import pytest

from harness.cli import main as cli_main
from harness.serve.records import StateError
from harness.serve.runtime import serve_in_thread
from harness.serve.scripted import ScriptedBackend
from harness.serve.store import Store

FILE = {"id": "file-a", "bytes": 5, "created_at": 1, "filename": "t.jsonl", "purpose": "fine-tune",
        "path": "files/file-a", "status": "processed"}
JOB = {"id": "ftjob-a", "created_at": 1, "model": "base", "training_file": "file-a", "validation_file": None,
       "hyperparameters": {"n_epochs": 1}, "seed": 0, "status": "succeeded", "fine_tuned_model": "ft:base:a",
       "adapter_dir": "models/ftjob-a", "sequence": 1}


def _state(root: Path, *, version=2, file=None, job=None) -> Path:
    (root / "files").mkdir(parents=True, exist_ok=True)
    (root / "models" / "ftjob-a").mkdir(parents=True, exist_ok=True)
    (root / "files" / "file-a").write_bytes(b"bytes")
    state = {"version": version, "files": [{**FILE, **(file or {})}], "jobs": [{**JOB, **(job or {})}]}
    (root / "state.json").write_text(json.dumps(state), encoding="utf-8")
    return root


def test_a_well_formed_state_loads(tmp_path):
    store = Store(_state(tmp_path), persist=True)
    assert store.file_path(store.files["file-a"]).read_bytes() == b"bytes"


@pytest.mark.parametrize(("change", "named"), [
    ({"file": {"path": "/etc/passwd"}}, "files[0] (file-a).path"),
    ({"file": {"path": "../../x"}}, "files[0] (file-a).path"),
    ({"file": {"path": "models/ftjob-a"}}, "files[0] (file-a).path"),  # inside the state dir, wrong folder
    ({"file": {"bytes": "5"}}, "files[0].bytes"),
    ({"file": {"filename": None}}, "files[0].filename"),
    ({"job": {"hyperparameters": [1]}}, "jobs[0].hyperparameters"),
    ({"job": {"adapter_dir": "/"}}, "jobs[0] (ftjob-a).adapter_dir"),
    ({"job": {"adapter_dir": "models/../../.."}}, "jobs[0] (ftjob-a).adapter_dir"),
    ({"job": {"status": "exploded"}}, "jobs[0].status"),
    ({"job": {"seed": True}}, "jobs[0].seed"),
    ({"job": {"metadata": {"k": 1}}}, "jobs[0].metadata"),
    ({"job": {"result_files": "file-a"}}, "jobs[0].result_files"),
    ({"version": True}, "state version True"),
])
def test_a_malformed_or_escaping_record_is_refused_naming_it(tmp_path, change, named):
    _state(tmp_path, **change)
    with pytest.raises(StateError) as caught:
        Store(tmp_path, persist=True)
    assert str(tmp_path / "state.json") in str(caught.value) and named in str(caught.value)


def test_an_upload_linked_out_of_the_state_dir_is_refused(tmp_path):
    _state(tmp_path)
    (tmp_path / "files" / "file-a").unlink()
    os.symlink("/etc/passwd", tmp_path / "files" / "file-a")
    with pytest.raises(StateError, match=r"files\[0\] \(file-a\)\.path"):
        Store(tmp_path, persist=True)


def test_serve_exits_3_naming_the_record_before_serving_anything(tmp_path, capsys):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    state = _state(tmp_path / "state", file={"path": "/etc/passwd"})
    assert cli_main(["serve", "--model", f"tiny={model}", "--port", "0", "--state-dir", str(state)]) == 3
    err = capsys.readouterr().err
    assert "files[0] (file-a).path" in err and "/etc/passwd" in err and "Traceback" not in err


def test_an_upload_whose_bytes_are_gone_answers_404(tmp_path):
    with serve_in_thread(ScriptedBackend("base"), state_dir=tmp_path) as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="x", max_retries=0)
        uploaded = client.files.create(file=("notes.txt", b"hello"), purpose="user_data")
        (tmp_path / "files" / uploaded.id).unlink()
        with pytest.raises(openai.NotFoundError) as caught:
            client.files.content(uploaded.id)
    assert uploaded.id in str(caught.value)

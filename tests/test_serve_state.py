"""The server's state directory: relative paths, per-job event logs, damaged state refused.

Each test reproduces a defect of issue 17 (items 5, 8, 10) against the real server on
127.0.0.1 with the official SDK.
"""

from __future__ import annotations

import json
import shutil
import time

import openai
import pytest

from harness.cli import main as cli_main
from harness.errors import HarnessError
from harness.serve.runtime import serve_in_thread
from harness.serve.scripted import ScriptedBackend, instant_trainer
from harness.serve.store import Store
from tests.test_serve_api import wait_for


def chat_rows(n: int) -> bytes:
    rows = [{"messages": [{"role": "user", "content": f"q {i}"},
                          {"role": "assistant", "content": f"a {i}"}]} for i in range(n)]
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def test_state_json_holds_no_absolute_paths_and_a_copied_state_dir_serves(tmp_path):
    original, copy = tmp_path / "original", tmp_path / "copy"
    data = chat_rows(4)
    with serve_in_thread(ScriptedBackend("base"), state_dir=original, train_fn=instant_trainer()) as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="x", max_retries=0)
        uploaded = client.files.create(file=("t.jsonl", data), purpose="fine-tune")
        done = wait_for(client, client.fine_tuning.jobs.create(model="base",
                                                               training_file=uploaded.id).id, timeout=30)
    assert done.status == "succeeded"
    assert str(tmp_path) not in (original / "state.json").read_text()
    shutil.copytree(original, copy)
    moved = tmp_path / "moved-away"
    original.rename(moved)  # the copy must not read the original's folder
    with serve_in_thread(ScriptedBackend("base"), state_dir=copy, train_fn=instant_trainer()) as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="x", max_retries=0)
        assert client.files.content(uploaded.id).content == data
        assert client.files.content(done.result_files[0]).text.startswith("step,")
        reply = client.chat.completions.create(model=done.fine_tuned_model,
                                               messages=[{"role": "user", "content": "hi"}])
        assert reply.choices[0].message.content == f"{done.fine_tuned_model}: hi"
    moved.rename(original)
    with serve_in_thread(ScriptedBackend("base"), state_dir=copy) as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="x", max_retries=0)
        assert client.files.delete(uploaded.id).deleted
    assert not (copy / "files" / uploaded.id).exists()
    assert (original / "files" / uploaded.id).read_bytes() == data  # the original keeps its bytes


def test_four_thousand_job_events_are_logged_apart_and_survive_a_restart(tmp_path):
    with serve_in_thread(ScriptedBackend("base"), state_dir=tmp_path, train_fn=instant_trainer()) as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="x", max_retries=0)
        training = client.files.create(file=("t.jsonl", chat_rows(4000)), purpose="fine-tune")
        began = time.perf_counter()
        job = client.fine_tuning.jobs.create(model="base", training_file=training.id,
                                             hyperparameters={"n_epochs": 1, "batch_size": 1})
        done = wait_for(client, job.id, timeout=120)
        elapsed = time.perf_counter() - began
    assert done.status == "succeeded"
    print(f"4,000-step job with a persisted state dir: {elapsed:.2f} s")
    state = json.loads((tmp_path / "state.json").read_text())
    assert "events" not in json.dumps(state)  # events live in the per-job append-only log
    with serve_in_thread(ScriptedBackend("base"), state_dir=tmp_path) as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="x", max_retries=0)
        events = list(client.fine_tuning.jobs.list_events(job.id, limit=1000))
    metrics = [e.data["step"] for e in events if e.type == "metrics"]
    assert len(metrics) == 4000 and metrics == sorted(metrics, reverse=True)
    assert events[0].message == "The job has successfully completed"


def test_store_appends_events_without_rewriting_state_json(tmp_path):
    from harness.serve.store import JobRecord

    store = Store(tmp_path, persist=True)
    store.add_job(JobRecord(id="ftjob-a", created_at=1, model="m", training_file="f",
                            validation_file=None, hyperparameters={}, seed=1))
    written = (tmp_path / "state.json").stat().st_mtime_ns
    began = time.perf_counter()
    for i in range(4000):
        store.add_event("ftjob-a", f"event {i}")
    elapsed = time.perf_counter() - began
    print(f"4,000 Store.add_event calls: {elapsed:.3f} s")
    assert (tmp_path / "state.json").stat().st_mtime_ns == written
    again = Store(tmp_path, persist=True)
    assert [e["message"] for e in again.jobs["ftjob-a"].events] == [f"event {i}" for i in range(4000)]


@pytest.mark.parametrize(("content", "expected"), [
    ('{"version": 1, "files": [', "not valid JSON"),
    ('{"version": 99, "files": [], "jobs": []}', "version 99"),
    ('[1, 2]', "expected a JSON object"),
    ('{"version": 2, "files": [{"id": "file-x"}], "jobs": []}', "files[0]"),
])
def test_a_damaged_state_json_is_a_harness_error_naming_the_file(tmp_path, content, expected):
    (tmp_path / "state.json").write_text(content)
    with pytest.raises(HarnessError) as err:
        Store(tmp_path, persist=True)
    assert str(tmp_path / "state.json") in str(err.value) and expected in str(err.value)


def test_serve_cli_exits_3_on_a_damaged_state_json_without_a_traceback(tmp_path, capsys):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    state = tmp_path / "state"
    state.mkdir()
    (state / "state.json").write_text('{"version": 1, "files": [')
    assert cli_main(["serve", "--model", f"tiny={model}", "--port", "0", "--state-dir", str(state)]) == 3
    err = capsys.readouterr().err
    assert str(state / "state.json") in err and "Traceback" not in err


def test_a_version_1_state_dir_is_migrated_to_relative_paths_and_event_logs(tmp_path):
    elsewhere = "/srv/old-location/state"  # version 1 stored absolute paths of the old folder
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "file-a").write_bytes(b"bytes")
    events = [{"id": f"ftevent-{i}", "object": "fine_tuning.job.event", "created_at": 1, "level": "info",
               "message": f"event {i}", "data": {}, "type": "message"} for i in range(3)]
    job = {"id": "ftjob-a", "created_at": 1, "model": "base", "training_file": "file-a",
           "validation_file": None, "hyperparameters": {}, "seed": 1, "status": "succeeded",
           "adapter_dir": f"{elsewhere}/models/ftjob-a", "events": events, "sequence": 1}
    file = {"id": "file-a", "bytes": 5, "created_at": 1, "filename": "t.jsonl", "purpose": "fine-tune",
            "path": f"{elsewhere}/files/file-a"}
    (tmp_path / "state.json").write_text(json.dumps({"version": 1, "files": [file], "jobs": [job]}))
    store = Store(tmp_path, persist=True)
    assert store.file_path(store.files["file-a"]).read_bytes() == b"bytes"
    assert store.resolve(store.jobs["ftjob-a"].adapter_dir) == tmp_path.resolve() / "models" / "ftjob-a"
    saved = json.loads((tmp_path / "state.json").read_text())
    assert saved["version"] == 2 and elsewhere not in json.dumps(saved)
    again = Store(tmp_path, persist=True)
    assert [e["message"] for e in again.jobs["ftjob-a"].events] == ["event 0", "event 1", "event 2"]


def test_a_torn_last_event_line_is_dropped_but_a_damaged_middle_line_is_an_error(tmp_path):
    from harness.serve.store import JobRecord

    store = Store(tmp_path, persist=True)
    store.add_job(JobRecord(id="ftjob-a", created_at=1, model="m", training_file="f",
                            validation_file=None, hyperparameters={}, seed=1))
    store.add_event("ftjob-a", "first")
    log = tmp_path / "events" / "ftjob-a.jsonl"
    with log.open("a") as handle:
        handle.write('{"id": "ftevent-torn", "mess')  # a crash in the middle of an append
    reopened = Store(tmp_path, persist=True)
    assert [e["message"] for e in reopened.jobs["ftjob-a"].events] == ["first"]
    reopened.add_event("ftjob-a", "second")  # starts on a fresh line after the cut
    assert [e["message"] for e in Store(tmp_path, persist=True).jobs["ftjob-a"].events] == ["first", "second"]
    log.write_text("not json\n" + log.read_text())
    with pytest.raises(HarnessError, match=r"ftjob-a\.jsonl:1"):
        Store(tmp_path, persist=True)

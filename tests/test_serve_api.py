"""The server's OpenAI surface over real HTTP with the official SDK, without loading a model.

A scripted backend answers chats and an instant trainer stands in for LoRA training, so
every endpoint, status transition and error shape is checked in milliseconds. The same
server with a real tiny model and the real trainer is exercised in test_serve_local.py.
"""

from __future__ import annotations

import json
import logging
import time

import httpx
import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types import FileObject
from openai.types.chat import ChatCompletion
from openai.types.completion import Completion
from openai.types.fine_tuning import FineTuningJob, FineTuningJobEvent
from openai.types.fine_tuning.jobs import FineTuningJobCheckpoint

from harness.cli import main as cli_main
from harness.serve.app import ServerSettings
from harness.serve.faults import FaultConfig, FaultInjector
from harness.serve.jobs import TrainingDefaults
from harness.serve.runtime import serve_in_thread
from harness.serve.scripted import ScriptedBackend, instant_trainer


def chat_rows(n: int, prefix: str = "q") -> bytes:
    rows = [{"messages": [{"role": "user", "content": f"{prefix} {i}"},
                          {"role": "assistant", "content": f"answer {i}"}]} for i in range(n)]
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def wait_for(client: openai.OpenAI, job_id: str, timeout: float = 10.0) -> FineTuningJob:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.fine_tuning.jobs.retrieve(job_id)
        if job.status in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} did not finish")


@pytest.fixture
def server():
    with serve_in_thread(ScriptedBackend("base"), train_fn=instant_trainer()) as running:
        yield running


@pytest.fixture
def client(server):
    return openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)


@pytest.fixture(scope="module")
def shared():
    """One server for the tests that create no files or jobs."""
    with serve_in_thread(ScriptedBackend("base")) as running:
        yield running, openai.OpenAI(base_url=running.base_url, api_key="unused", max_retries=0)


def upload(client, data: bytes = b"", name: str = "train.jsonl"):
    return client.files.create(file=(name, data or chat_rows(6)), purpose="fine-tune")


# -- models, chat, completions ----------------------------------------------------------------

def test_models_health_and_unknown_model(shared):
    server, client = shared
    assert [m.id for m in client.models.list()] == ["base"]
    assert client.models.retrieve("base").owned_by == "local"
    assert httpx.get(server.base_url.removesuffix("/v1") + "/health").json()["status"] == "ok"
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="gpt-nope", messages=[{"role": "user", "content": "x"}])
    assert err.value.code == "model_not_found" and err.value.param == "model"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-nope")


def test_chat_completion_shape_usage_n_stop_and_length(shared):
    server, client = shared
    raw = httpx.post(f"{server.base_url}/chat/completions", json={
        "model": "base", "n": 3, "max_tokens": 2, "temperature": 0,
        "messages": [{"role": "developer", "content": "be brief"},
                     {"role": "user", "content": [{"type": "text", "text": "one two three"}]}]})
    completion = ChatCompletion.model_validate(raw.json())  # strict shape check
    assert [c.message.content for c in completion.choices] == ["base: one"] * 3
    assert [c.finish_reason for c in completion.choices] == ["length"] * 3
    assert completion.usage.prompt_tokens == 3 + 4  # counted once, not per choice
    assert completion.usage.completion_tokens == 3 * 2
    stopped = client.chat.completions.create(model="base", stop=["two"], max_tokens=50,
                                             messages=[{"role": "user", "content": "one two"}])
    assert stopped.choices[0].message.content == "base: one "
    assert stopped.choices[0].finish_reason == "stop"


def test_legacy_completions_with_several_prompts(shared):
    _, client = shared
    result = client.completions.create(model="base", prompt=["alpha", "beta"], n=2, max_tokens=5)
    Completion.model_validate(result.model_dump())
    assert [c.text for c in result.choices] == ["base: alpha"] * 2 + ["base: beta"] * 2
    assert result.usage.total_tokens == result.usage.prompt_tokens + result.usage.completion_tokens


@pytest.mark.parametrize(("body", "status", "param"), [
    ({"model": "base"}, 400, "messages"),
    ({"messages": [{"role": "user", "content": "x"}]}, 400, "model"),
    ({"model": "base", "messages": [{"role": "bot", "content": "x"}]}, 400, "messages[0].role"),
    ({"model": "base", "messages": [{"role": "user", "content": "x"}], "temperature": 3}, 400, "temperature"),
    ({"model": "base", "messages": [{"role": "user", "content": "x"}], "n": 0}, 400, "n"),
    ({"model": "base", "messages": [{"role": "user", "content": "x"}], "stop": list("abcde")}, 400, "stop"),
    ({"model": "base", "messages": [{"role": "user", "content": "x"}], "max_tokens": 10**6}, 400, "max_tokens"),
    ({"model": "base", "messages": [{"role": "user", "content": "x"}], "stream_options": {}}, 400, "stream_options"),
    ({"model": "base", "messages": [{"role": "user", "content": "x"}], "logprobs": True}, 422, "logprobs"),
    ({"model": "base", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]}, 422, "tools"),
    ({"model": "base", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, 422, "messages[0].content[0]"),
])
def test_bad_chat_requests_get_openai_shaped_4xx(shared, body, status, param):
    server, _ = shared
    response = httpx.post(f"{server.base_url}/chat/completions", json=body)
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param and error["message"]


def test_malformed_json_unknown_routes_and_sdk_exception_classes(shared):
    server, client = shared
    response = httpx.post(f"{server.base_url}/chat/completions", content=b"{not json",
                          headers={"content-type": "application/json"})
    assert response.status_code == 400 and "parse the JSON body" in response.json()["error"]["message"]
    assert httpx.get(f"{server.base_url}/nothing/here").json()["error"]["message"].startswith("Invalid URL")
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="base", messages=[])
    with pytest.raises(openai.UnprocessableEntityError):
        client.chat.completions.create(model="base", messages=[{"role": "user", "content": "x"}],
                                       logprobs=True)


def test_a_crashing_backend_gives_an_openai_shaped_500_without_internals():
    def crash(model, messages, params):
        raise RuntimeError("secret internal detail")

    with serve_in_thread(ScriptedBackend("base", crash)) as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="x", max_retries=0)
        with pytest.raises(openai.InternalServerError) as err:
            client.chat.completions.create(model="base", messages=[{"role": "user", "content": "x"}])
    assert err.value.body["type"] == "server_error"
    assert "secret internal detail" not in str(err.value.body)


def test_injected_faults_map_to_sdk_exceptions():
    plan = {"POST /v1/chat/completions": ("429", "500")}
    with serve_in_thread(ScriptedBackend("base"),
                         settings=ServerSettings(faults=FaultConfig(plan=plan, retry_after_s=2))) as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="x", max_retries=0)
        request = {"model": "base", "messages": [{"role": "user", "content": "x"}]}
        with pytest.raises(openai.RateLimitError) as limited:
            client.chat.completions.create(**request)
        assert limited.value.response.headers["retry-after"] == "2"
        assert limited.value.response.headers["retry-after-ms"] == "2000"
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(**request)
        assert client.chat.completions.create(**request).choices[0].message.content == "base: x"


@settings(max_examples=30, deadline=None)
@given(st.floats(min_value=0, max_value=1), st.integers(min_value=0, max_value=1000),
       st.integers(min_value=0, max_value=3))
def test_no_operation_is_faulted_more_than_max_consecutive_times(rate, seed, max_consecutive):
    injector = FaultInjector(FaultConfig(rate=rate, seed=seed, max_consecutive=max_consecutive,
                                         kinds=("429", "500", "stall")))
    streak = {}
    decisions = []
    for i in range(300):
        path = f"/v1/op{i % 3}"
        kind = injector.decide("POST", path)
        decisions.append(kind)
        streak[path] = streak.get(path, 0) + 1 if kind else 0
        assert streak[path] <= max_consecutive
    again = FaultInjector(FaultConfig(rate=rate, seed=seed, max_consecutive=max_consecutive,
                                      kinds=("429", "500", "stall")))
    assert [again.decide("POST", f"/v1/op{i % 3}") for i in range(300)] == decisions
    assert injector.decide("GET", "/health") is None


# -- authentication ----------------------------------------------------------------------------

def test_bearer_token_is_checked_and_never_echoed(caplog):
    secret = "sk-serve-SECRET-b7c1d9e2f3a4"
    caplog.set_level(logging.DEBUG)
    with serve_in_thread(ScriptedBackend("base"), settings=ServerSettings(api_key=secret)) as srv:
        request = {"model": "base", "messages": [{"role": "user", "content": "x"}]}
        for wrong in ("sk-serve-WRONG-000000000000", secret[:-1]):
            bad = openai.OpenAI(base_url=srv.base_url, api_key=wrong, max_retries=0)
            with pytest.raises(openai.AuthenticationError) as err:
                bad.chat.completions.create(**request)
            assert wrong not in str(err.value.body) and secret not in str(err.value.body)
        missing = httpx.get(f"{srv.base_url}/models")
        assert missing.status_code == 401 and missing.json()["error"]["code"] == "missing_api_key"
        good = openai.OpenAI(base_url=srv.base_url, api_key=secret, max_retries=0)
        assert good.chat.completions.create(**request).choices[0].message.content == "base: x"
        assert httpx.get(srv.base_url.removesuffix("/v1") + "/health").status_code == 200
    assert secret not in caplog.text


# -- files --------------------------------------------------------------------------------------

def test_file_upload_list_retrieve_content_delete(server, client):
    data = chat_rows(4)
    uploaded = upload(client, data)
    FileObject.model_validate(uploaded.model_dump())
    assert (uploaded.bytes, uploaded.filename, uploaded.purpose) == (len(data), "train.jsonl", "fine-tune")
    other = client.files.create(file=("notes.txt", b"anything"), purpose="user_data")
    assert {f.id for f in client.files.list()} == {uploaded.id, other.id}
    assert [f.id for f in client.files.list(purpose="fine-tune")] == [uploaded.id]
    first = client.files.list(limit=1)
    assert first.has_more and len(first.data) == 1
    rest = client.files.list(limit=1, after=first.data[0].id)
    assert not rest.has_more and rest.data[0].id != first.data[0].id
    assert client.files.retrieve(uploaded.id).bytes == len(data)
    assert client.files.content(uploaded.id).content == data
    assert client.files.delete(uploaded.id).deleted
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(uploaded.id)
    with pytest.raises(openai.NotFoundError):
        client.files.delete(uploaded.id)


def test_invalid_training_upload_is_rejected_naming_line_and_field(server, client):
    bad = chat_rows(2) + b'{"messages": [{"role": "user", "content": "x"}, {"role": "robot", "content": "y"}]}\n'
    with pytest.raises(openai.BadRequestError) as err:
        client.files.create(file=("mine.jsonl", bad), purpose="fine-tune")
    message = err.value.body["message"]
    assert "mine.jsonl:3" in message and "messages[1].role" in message
    assert err.value.body["param"] == "file"
    with pytest.raises(openai.BadRequestError):
        client.files.create(file=("x.jsonl", b"not json\n"), purpose="fine-tune")
    with pytest.raises(openai.BadRequestError) as purpose:
        client.files.create(file=("x.jsonl", chat_rows(1)), purpose="homework")
    assert purpose.value.param == "purpose"
    assert list(client.files.list()) == []


def test_oversized_uploads_are_rejected():
    with serve_in_thread(ScriptedBackend("base"), settings=ServerSettings(max_upload_bytes=300)) as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="x", max_retries=0)
        for size in (400, 200_000):  # past the limit; past it by more than the multipart slack
            with pytest.raises(openai.BadRequestError) as err:
                client.files.create(file=("big.jsonl", b"x" * size), purpose="user_data")
            assert err.value.code == "file_too_large"
        assert client.files.create(file=("ok.txt", b"x" * 300), purpose="user_data").bytes == 300


# -- fine-tuning jobs ---------------------------------------------------------------------------

def test_job_lifecycle_events_checkpoints_results_and_serving(server, client):
    training, validation = upload(client), upload(client, chat_rows(3, "v"), "valid.jsonl")
    job = client.fine_tuning.jobs.create(
        model="base", training_file=training.id, validation_file=validation.id, suffix="demo",
        seed=7, metadata={"team": "a"},
        method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2, "batch_size": 3}}})
    FineTuningJob.model_validate(job.model_dump())
    assert job.status == "validating_files" and job.fine_tuned_model is None
    done = wait_for(client, job.id)
    assert done.status == "succeeded" and done.error is None
    assert done.fine_tuned_model == f"ft:base:demo:{job.id.removeprefix('ftjob-')}"
    assert done.hyperparameters.n_epochs == 2 and done.hyperparameters.batch_size == 3
    assert done.hyperparameters.learning_rate_multiplier == 1.0  # "auto" resolved
    assert done.seed == 7 and done.metadata == {"team": "a"}
    assert done.trained_tokens == 2 * 6 * 6  # 6 examples × 6 counted tokens × 2 epochs

    events = list(client.fine_tuning.jobs.list_events(job.id, limit=100))
    for event in events:
        FineTuningJobEvent.model_validate(event.model_dump())
    messages = [e.message for e in reversed(events)]
    order = ["Created fine-tuning job", "Validating training file", "Files validated",
             "Fine-tuning job started", "Step 1/4", "Step 4/4", "New fine-tuned model created",
             "The job has successfully completed"]
    positions = [next(i for i, m in enumerate(messages) if m.startswith(p)) for p in order]
    assert positions == sorted(positions)
    metrics = [e for e in events if e.type == "metrics"]
    assert [e.data["step"] for e in reversed(metrics)] == [1, 2, 3, 4]
    newest_two = client.fine_tuning.jobs.list_events(job.id, limit=2)
    assert newest_two.has_more and [e.id for e in newest_two.data] == [e.id for e in events[:2]]

    checkpoints = list(client.fine_tuning.jobs.checkpoints.list(job.id))
    for checkpoint in checkpoints:
        FineTuningJobCheckpoint.model_validate(checkpoint.model_dump())
    assert [c.step_number for c in checkpoints] == [4, 2]  # newest first, one per epoch
    assert checkpoints[0].fine_tuned_model_checkpoint == done.fine_tuned_model
    assert checkpoints[0].metrics.train_loss == pytest.approx(0.5)
    assert checkpoints[0].metrics.valid_loss == pytest.approx(2.5 / 4)

    results = client.files.content(done.result_files[0]).text.splitlines()
    assert results[0].startswith("step,train_loss") and len(results) == 1 + 4
    reply = client.chat.completions.create(model=done.fine_tuned_model,
                                           messages=[{"role": "user", "content": "hello"}])
    assert reply.choices[0].message.content == f"{done.fine_tuned_model}: hello"
    assert done.fine_tuned_model in {m.id for m in client.models.list()}


def test_legacy_hyperparameters_and_list_paging_with_metadata_filter(server, client):
    training = upload(client)
    ids = []
    for i in range(3):
        job = client.fine_tuning.jobs.create(model="base", training_file=training.id,
                                             hyperparameters={"n_epochs": 1}, metadata={"i": str(i)})
        ids.append(job.id)
        assert job.hyperparameters.n_epochs == 1
    listed = client.fine_tuning.jobs.list(limit=2)
    assert [j.id for j in listed.data] == ids[::-1][:2] and listed.has_more
    assert [j.id for j in client.fine_tuning.jobs.list(limit=2, after=listed.data[-1].id)] == [ids[0]]
    assert [j.id for j in client.fine_tuning.jobs.list()] == ids[::-1]  # auto-paging
    assert [j.id for j in client.fine_tuning.jobs.list(metadata={"i": "1"})] == [ids[1]]
    for job_id in ids:
        assert wait_for(client, job_id).status == "succeeded"


@pytest.mark.parametrize(("change", "error", "param"), [
    ({"model": "nope"}, openai.NotFoundError, "model"),
    ({"training_file": "file-missing"}, openai.BadRequestError, "training_file"),
    ({"validation_file": "file-missing"}, openai.BadRequestError, "validation_file"),
    ({"suffix": "bad suffix!"}, openai.BadRequestError, "suffix"),
    ({"hyperparameters": {"n_epochs": 0}}, openai.BadRequestError, "hyperparameters.n_epochs"),
    ({"hyperparameters": {"n_epochs": 1},
      "method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2}}}},
     openai.BadRequestError, "hyperparameters"),
    ({"method": {"type": "dpo"}}, openai.UnprocessableEntityError, "method.type"),
    ({"hyperparameters": {"epochs": 2}}, openai.BadRequestError, "hyperparameters.epochs"),
])
def test_bad_job_requests(server, client, change, error, param):
    request = {"model": "base", "training_file": upload(client).id, **change}
    with pytest.raises(error) as err:
        client.fine_tuning.jobs.create(**request)
    assert err.value.param == param
    assert list(client.fine_tuning.jobs.list()) == []


def test_fine_tuned_models_and_non_fine_tune_files_cannot_be_trained_on(server, client):
    job = client.fine_tuning.jobs.create(model="base", training_file=upload(client).id)
    model = wait_for(client, job.id).fine_tuned_model
    with pytest.raises(openai.BadRequestError, match="not available for fine-tuning"):
        client.fine_tuning.jobs.create(model=model, training_file=upload(client).id)
    notes = client.files.create(file=("n.jsonl", chat_rows(2)), purpose="user_data")
    with pytest.raises(openai.BadRequestError, match="purpose"):
        client.fine_tuning.jobs.create(model="base", training_file=notes.id)


def test_unknown_job_ids_are_404_everywhere(client):
    for call in (client.fine_tuning.jobs.retrieve, client.fine_tuning.jobs.cancel,
                 client.fine_tuning.jobs.list_events, client.fine_tuning.jobs.checkpoints.list):
        with pytest.raises(openai.NotFoundError):
            call("ftjob-unknown")


def test_cancel_stops_training_and_publishes_nothing():
    with serve_in_thread(ScriptedBackend("base"), train_fn=instant_trainer(step_delay_s=0.1)) as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="x", max_retries=0)
        job = client.fine_tuning.jobs.create(model="base", training_file=upload(client).id,
                                             hyperparameters={"n_epochs": 20, "batch_size": 1})
        while client.fine_tuning.jobs.retrieve(job.id).status != "running":
            time.sleep(0.02)
        cancelled = client.fine_tuning.jobs.cancel(job.id)
        assert cancelled.status == "cancelled"
        time.sleep(0.3)
        final = client.fine_tuning.jobs.retrieve(job.id)
        assert final.status == "cancelled" and final.fine_tuned_model is None
        assert [m.id for m in client.models.list()] == ["base"]
        with pytest.raises(openai.BadRequestError, match="already cancelled"):
            client.fine_tuning.jobs.cancel(job.id)


def test_jobs_fail_in_validation_or_training_with_an_error_object():
    defaults = TrainingDefaults(min_examples=5)
    with serve_in_thread(ScriptedBackend("base"), train_fn=instant_trainer(fail_with="out of memory"),
                         training=defaults) as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="x", max_retries=0)
        small = client.files.create(file=("small.jsonl", chat_rows(2)), purpose="fine-tune")
        job = wait_for(client, client.fine_tuning.jobs.create(model="base", training_file=small.id).id)
        assert job.status == "failed"
        assert job.error.code == "invalid_training_file" and job.error.param == "training_file"
        assert "at least 5" in job.error.message
        crash = client.fine_tuning.jobs.create(model="base", training_file=upload(client).id,
                                               hyperparameters={"batch_size": 1})
        crashed = wait_for(client, crash.id)
        assert crashed.status == "failed" and "out of memory" in crashed.error.message
        assert any(e.level == "error" for e in client.fine_tuning.jobs.list_events(crash.id))


def test_state_dir_keeps_files_jobs_and_models_across_restarts(tmp_path):
    with serve_in_thread(ScriptedBackend("base"), state_dir=tmp_path,
                         train_fn=instant_trainer()) as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="x", max_retries=0)
        training = upload(client)
        done = wait_for(client, client.fine_tuning.jobs.create(model="base", training_file=training.id).id)
    with serve_in_thread(ScriptedBackend("base"), state_dir=tmp_path,
                         train_fn=instant_trainer(step_delay_s=0.2)) as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="x", max_retries=0)
        assert client.fine_tuning.jobs.retrieve(done.id).status == "succeeded"
        assert client.files.retrieve(training.id).bytes == training.bytes
        reply = client.chat.completions.create(model=done.fine_tuned_model,
                                               messages=[{"role": "user", "content": "hi"}])
        assert reply.choices[0].message.content.startswith(done.fine_tuned_model)
        slow = client.fine_tuning.jobs.create(model="base", training_file=training.id,
                                              hyperparameters={"batch_size": 1})
        while client.fine_tuning.jobs.retrieve(slow.id).status != "running":
            time.sleep(0.02)
    with serve_in_thread(ScriptedBackend("base"), state_dir=tmp_path, train_fn=instant_trainer()) as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="x", max_retries=0)
        resumed = wait_for(client, slow.id)
        assert resumed.status == "succeeded"
        assert any("restarted" in e.message for e in client.fine_tuning.jobs.list_events(slow.id, limit=100))
        assert [j.id for j in client.fine_tuning.jobs.list()] == [slow.id, done.id]


def test_serve_cli_rejects_bad_arguments(tmp_path, capsys):
    with pytest.raises(SystemExit) as usage:
        cli_main(["serve", "--model", "no-equals-sign"])
    assert usage.value.code == 2
    assert cli_main(["serve", "--model", f"tiny={tmp_path}", "--port", "0"]) == 3
    assert "no config.json" in capsys.readouterr().err
    (tmp_path / "config.json").write_text("{}")
    assert cli_main(["serve", "--model", f"tiny={tmp_path}", "--lora", "rank=8"]) == 3
    assert "unknown LoRA parameter 'rank'" in capsys.readouterr().err
    assert cli_main(["serve", "--model", f"tiny={tmp_path}", "--fault-kinds", "418"]) == 3
    assert "fault kinds" in capsys.readouterr().err
    assert cli_main(["serve", "--model", f"tiny={tmp_path}", "--api-key-env", "FT_UNSET_VAR_X"]) == 3
    assert "FT_UNSET_VAR_X" in capsys.readouterr().err

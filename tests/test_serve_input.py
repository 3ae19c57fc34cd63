"""Client input the server must refuse with a 400 in OpenAI's error shape, never a 500 (issue 17)."""

from __future__ import annotations

import httpx
import openai
import pytest

from harness.cli import main as cli_main
from harness.serve.runtime import serve_in_thread
from harness.serve.scripted import ScriptedBackend

CHAT = {"model": "base", "messages": [{"role": "user", "content": "x"}]}


@pytest.fixture(scope="module")
def shared():
    with serve_in_thread(ScriptedBackend("base", context_window=256)) as running:
        yield running, openai.OpenAI(base_url=running.base_url, api_key="unused", max_retries=0)


def error_of(response: httpx.Response, status: int = 400) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    return error


@pytest.mark.parametrize("seed", [2**63, 2**64 + 5, -(2**63) - 1, 10**30])
def test_seeds_outside_int64_are_400(shared, seed):
    server, _ = shared
    body = {**CHAT, "temperature": 0.7, "seed": seed}
    error = error_of(httpx.post(f"{server.base_url}/chat/completions", json=body))
    assert error["param"] == "seed"
    prompt = {"model": "base", "prompt": "x", "temperature": 0.7, "seed": seed}
    assert error_of(httpx.post(f"{server.base_url}/completions", json=prompt))["param"] == "seed"


def test_int64_edge_seeds_are_served(shared):
    _, client = shared
    for seed in (2**63 - 1, -(2**63)):
        assert client.chat.completions.create(**CHAT, temperature=0.7, seed=seed).choices


@pytest.mark.parametrize("prompt", ["", [""], [], [[]]])
def test_empty_completion_prompts_are_400(shared, prompt):
    server, _ = shared
    error = error_of(httpx.post(f"{server.base_url}/completions",
                                json={"model": "base", "prompt": prompt}))
    assert error["param"] == "prompt"


@pytest.mark.parametrize("name", ["..", ".", "a" * 256, "é" * 128, "dir/.."])
@pytest.mark.parametrize("purpose", ["fine-tune", "user_data"])
def test_unusable_upload_filenames_are_400(shared, name, purpose):
    _, client = shared
    with pytest.raises(openai.BadRequestError) as err:
        client.files.create(file=(name, b'{"messages": []}\n'), purpose=purpose)
    assert err.value.param == "file" and err.value.code == "invalid_file_name"
    assert list(client.files.list()) == []


@pytest.mark.parametrize("purpose", [b"fine-tune", b"user_data"])
def test_a_nul_byte_in_the_upload_filename_is_400(shared, purpose):
    server, client = shared  # the SDK escapes NUL as %00; a raw client need not
    boundary = b"b0undary"
    body = (b"--" + boundary + b'\r\nContent-Disposition: form-data; name="purpose"\r\n\r\n' + purpose
            + b"\r\n--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; '
            b'filename="bad\x00name.jsonl"\r\nContent-Type: application/octet-stream\r\n\r\n'
            b'{"messages": []}\n\r\n--' + boundary + b"--\r\n")
    response = httpx.post(f"{server.base_url}/files", content=body,
                          headers={"content-type": f"multipart/form-data; boundary={boundary.decode()}"})
    error = error_of(response)
    assert error["param"] == "file" and error["code"] == "invalid_file_name"
    assert list(client.files.list()) == []


def test_a_long_but_valid_filename_is_kept(shared):
    _, client = shared
    name = "a" * 249 + ".jsonl"  # 255 bytes
    rows = b'{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}\n'
    uploaded = client.files.create(file=(name, rows), purpose="fine-tune")
    assert uploaded.filename == name
    client.files.delete(uploaded.id)


@pytest.mark.parametrize("value", [True, "3", 2.5, [3]])
@pytest.mark.parametrize("name", ["n_epochs", "batch_size"])
def test_hyperparameters_must_be_integers_or_auto(shared, name, value):
    server, _ = shared
    body = {"model": "base", "training_file": "file-x", "hyperparameters": {name: value}}
    error = error_of(httpx.post(f"{server.base_url}/fine_tuning/jobs", json=body))
    assert error["param"] == f"hyperparameters.{name}"
    assert "integer or 'auto'" in error["message"]


def test_learning_rate_multiplier_must_be_a_number_or_auto(shared):
    server, _ = shared
    for value in (True, "0.5"):
        body = {"model": "base", "training_file": "file-x",
                "method": {"type": "supervised",
                           "supervised": {"hyperparameters": {"learning_rate_multiplier": value}}}}
        error = error_of(httpx.post(f"{server.base_url}/fine_tuning/jobs", json=body))
        assert error["param"] == "method.supervised.hyperparameters.learning_rate_multiplier"
        assert "number or 'auto'" in error["message"]


def test_prompts_longer_than_the_context_window_are_context_length_exceeded(shared):
    _, client = shared
    words = " ".join(["w"] * 20_004)  # 20,004 words + 1 per message = 20,005 tokens
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="base", messages=[{"role": "user", "content": words}])
    assert err.value.code == "context_length_exceeded" and err.value.param == "messages"
    assert "maximum context length is 256 tokens" in err.value.message
    assert "20005" in err.value.message.replace(",", "")
    with pytest.raises(openai.BadRequestError) as completion:
        client.completions.create(model="base", prompt=words)
    assert completion.value.code == "context_length_exceeded" and completion.value.param == "prompt"
    # the prompt fits but the requested completion does not
    with pytest.raises(openai.BadRequestError) as requested:
        client.chat.completions.create(model="base", max_tokens=200,
                                       messages=[{"role": "user", "content": " ".join(["w"] * 99)}])
    assert requested.value.code == "context_length_exceeded"
    assert client.chat.completions.create(model="base", max_tokens=150,
                                          messages=[{"role": "user", "content": "w " * 99}]).choices


@pytest.mark.parametrize(("path", "param"), [("chat/completions", "model"), ("completions", "model"),
                                             ("fine_tuning/jobs", "model")])
def test_an_empty_body_names_the_missing_parameter(shared, path, param):
    server, _ = shared
    for content in (b"", b"{}"):
        error = error_of(httpx.post(f"{server.base_url}/{path}", content=content,
                                    headers={"content-type": "application/json"}))
        assert error["param"] == param and f"'{param}'" in error["message"]
        assert "''" not in error["message"]


def test_token_id_prompts_are_decoded(shared):
    _, client = shared
    single = client.completions.create(model="base", prompt=[1, 2, 3], max_tokens=10)
    assert single.choices[0].text == "base: 1 2 3"
    several = client.completions.create(model="base", prompt=[[4, 5], [6]], max_tokens=10)
    assert [c.text for c in several.choices] == ["base: 4 5", "base: 6"]


@pytest.mark.parametrize("prompt", [5, [1, "a"], [-1], {"x": 1}])
def test_malformed_prompts_are_400_without_internal_names(shared, prompt):
    server, _ = shared
    error = error_of(httpx.post(f"{server.base_url}/completions",
                                json={"model": "base", "prompt": prompt}))
    assert error["param"] == "prompt"
    for internal in ("prompt.str", "list[", "union"):
        assert internal not in error["message"]


def test_data_validate_of_a_missing_file_exits_3(tmp_path, capsys):
    missing = tmp_path / "missing.jsonl"
    assert cli_main(["data", "validate", str(missing)]) == 3
    assert f"{missing}: file not found" in capsys.readouterr().out

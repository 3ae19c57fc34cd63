"""``stream=True`` for chat and completions: OpenAI's chunks over server-sent events (issue 17)."""

from __future__ import annotations

import httpx
import openai
import pytest

from harness.serve.runtime import serve_in_thread
from harness.serve.scripted import ScriptedBackend


@pytest.fixture(scope="module")
def shared():
    with serve_in_thread(ScriptedBackend("base")) as running:
        yield running, openai.OpenAI(base_url=running.base_url, api_key="unused", max_retries=0)


def test_chat_streams_chunks_with_the_sdk_iterator(shared):
    _, client = shared
    stream = client.chat.completions.create(
        model="base", stream=True, n=2, max_tokens=50,
        messages=[{"role": "user", "content": "one two three"}])
    chunks = list(stream)
    assert all(c.object == "chat.completion.chunk" and c.model == "base" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    texts = {0: "", 1: ""}
    roles = set()
    finish = {}
    for chunk in chunks:
        assert chunk.usage is None
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
            if choice.delta.role:
                roles.add((choice.index, choice.delta.role))
            if choice.finish_reason:
                finish[choice.index] = choice.finish_reason
    assert texts == {0: "base: one two three", 1: "base: one two three"}
    assert roles == {(0, "assistant"), (1, "assistant")}
    assert finish == {0: "stop", 1: "stop"}
    assert sum(1 for c in chunks for ch in c.choices if ch.delta.content) > 2  # more than one piece


def test_streamed_text_equals_the_non_streamed_reply_and_usage_comes_last(shared):
    _, client = shared
    request = {"model": "base", "max_tokens": 2, "messages": [{"role": "user", "content": "a b c"}]}
    plain = client.chat.completions.create(**request)
    chunks = list(client.chat.completions.create(**request, stream=True,
                                                 stream_options={"include_usage": True}))
    text = "".join(ch.delta.content or "" for c in chunks for ch in c.choices)
    assert text == plain.choices[0].message.content
    assert [ch.finish_reason for c in chunks for ch in c.choices if ch.finish_reason] == ["length"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.model_dump() == plain.usage.model_dump()
    assert all(c.usage is None for c in chunks[:-1])


def test_completions_stream(shared):
    _, client = shared
    chunks = list(client.completions.create(model="base", prompt=["x y", "z"], stream=True,
                                            max_tokens=10, stream_options={"include_usage": True}))
    assert all(c.object == "text_completion" for c in chunks)
    texts: dict[int, str] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + choice.text
    assert texts == {0: "base: x y", 1: "base: z"}
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 3 + 2


def test_the_wire_format_is_server_sent_events_ending_in_done(shared):
    server, _ = shared
    with httpx.stream("POST", f"{server.base_url}/chat/completions",
                      json={"model": "base", "stream": True,
                            "messages": [{"role": "user", "content": "hi"}]}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"


def test_errors_before_the_stream_are_plain_json_errors(shared):
    _, client = shared
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", stream=True,
                                       messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="base", stream_options={"include_usage": True},
                                       messages=[{"role": "user", "content": "x"}])
    assert err.value.param == "stream_options"

"""The shared OpenAI client plumbing: retry policy, Retry-After, redaction, concurrency.

Retries are exercised with the real SDK against the real server on 127.0.0.1, with faults
scripted per operation so each test knows exactly what the client met.
"""

from __future__ import annotations

import email.utils
import random
import threading
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.backends.http import (
    ClientConfig,
    RemoteCallError,
    RetryPolicy,
    call_with_retries,
    make_client,
    map_concurrently,
    retry_after_seconds,
)
from harness.backends.openai.client import ChatGenerator
from harness.errors import HarnessError
from harness.protocol import DecodeParams
from harness.secrets import Secret, redact_text, redact_url
from harness.serve.app import ServerSettings
from harness.serve.faults import FaultConfig
from harness.serve.runtime import serve_in_thread
from harness.serve.scripted import ScriptedBackend

FAST = RetryPolicy(max_attempts=4, initial_backoff_s=0.01, max_backoff_s=0.02)
CHAT = "POST /v1/chat/completions"


def _server(plan=None, **faults):
    config = FaultConfig(plan=plan or {}, **faults)
    return serve_in_thread(ScriptedBackend("base"), settings=ServerSettings(faults=config))


def _chat(client):
    return lambda: client.chat.completions.create(model="base", messages=[{"role": "user", "content": "hi"}])


@given(st.integers(min_value=1, max_value=40),
       st.floats(min_value=0, max_value=5), st.floats(min_value=1, max_value=4),
       st.floats(min_value=0, max_value=60), st.floats(min_value=0, max_value=1),
       st.integers(min_value=0, max_value=2**32))
def test_backoff_is_exponential_capped_and_jittered(attempt, initial, multiplier, cap, jitter, seed):
    policy = RetryPolicy(initial_backoff_s=initial, multiplier=multiplier, max_backoff_s=cap,
                         jitter=jitter)
    ceiling = min(cap, initial * multiplier ** (attempt - 1))
    delay = policy.backoff_s(attempt, None, random.Random(seed))
    assert ceiling * (1 - jitter) - 1e-9 <= delay <= ceiling + 1e-9


@given(st.floats(min_value=0, max_value=500), st.floats(min_value=0, max_value=120))
def test_retry_after_wins_and_is_capped(retry_after, cap):
    policy = RetryPolicy(max_retry_after_s=cap)
    assert policy.backoff_s(3, retry_after, random.Random(0)) == min(retry_after, cap)


def test_retry_after_headers_ms_seconds_and_dates():
    assert retry_after_seconds({"Retry-After-Ms": "250"}) == 0.25
    assert retry_after_seconds({"retry-after": "3"}) == 3.0
    when = email.utils.formatdate(1_000_010, usegmt=True)
    assert retry_after_seconds({"retry-after": when}, now=1_000_000) == pytest.approx(10.0)
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None


@given(st.text(alphabet=st.characters(categories=["L", "N"]), min_size=3, max_size=20),
       st.text(alphabet=st.characters(categories=["L", "N"]), min_size=8, max_size=30))
def test_redact_url_removes_user_password_and_query(user, password):
    url = f"https://{user}:{password}@api.example.com:8443/v1/?api_key={password}#frag"
    cleaned = redact_url(url)
    assert cleaned == "https://api.example.com:8443/v1"
    assert password not in cleaned


def test_redact_scrubs_the_key_and_key_shaped_strings():
    text = "bad key sk-proj-abcdefghijkl1234 and mysecretvalue; Bearer abc.def.ghi"
    cleaned = redact_text(text, [Secret("mysecretvalue")])
    assert "mysecretvalue" not in cleaned and "sk-proj-abcdefghijkl1234" not in cleaned
    assert "abc.def.ghi" not in cleaned and cleaned.startswith("bad key ***")


def test_config_reads_environment_and_hides_key_and_url_password():
    config = ClientConfig.resolve(env={"OPENAI_BASE_URL": "http://u:pw-7f3a@127.0.0.1:9/v1",
                                       "MY_KEY": "sk-envkey-0123456789"}, api_key_env="MY_KEY")
    assert isinstance(config.api_key, Secret) and config.api_key.reveal() == "sk-envkey-0123456789"
    for shown in (repr(config), str(config), f"{config.api_key}", repr(config.secrets())):
        assert "sk-envkey" not in shown and "pw-7f3a" not in shown
    assert config.base_url == config.public_base_url == "http://127.0.0.1:9/v1"
    assert config.sdk_url.reveal() == "http://u:pw-7f3a@127.0.0.1:9/v1"  # what the SDK is given
    assert "pw-7f3a" in [s.reveal() for s in config.secrets()]
    with pytest.raises(HarnessError, match="OPENAI_API_KEY"):
        make_client(ClientConfig())


def test_429_honours_retry_after_then_succeeds():
    sleeps: list[float] = []
    with _server({CHAT: ("429", "429")}, retry_after_s=0.25) as server:
        client = make_client(ClientConfig(base_url=server.base_url))
        retries: list[str] = []
        result = call_with_retries(_chat(client), FAST, what="chat", sleep=sleeps.append,
                                   on_retry=lambda n, why, wait: retries.append(why))
    assert result.choices[0].message.content == "base: hi"
    assert sleeps == [0.25, 0.25]  # the server's retry-after-ms, not our backoff
    assert all("429" in why for why in retries)


def test_500_and_timeouts_are_retried_with_backoff():
    sleeps: list[float] = []
    with _server({CHAT: ("500", "stall")}, stall_s=1.0) as server:
        client = make_client(ClientConfig(base_url=server.base_url, timeout_s=0.3))
        reasons: list[str] = []
        result = call_with_retries(_chat(client), FAST, what="chat", sleep=sleeps.append,
                                   on_retry=lambda n, why, wait: reasons.append(why))
    assert result.usage.completion_tokens == 2
    assert reasons[0].startswith("HTTP 500") and reasons[1] == "request timed out"
    assert len(sleeps) == 2 and all(0 < s <= 0.02 for s in sleeps)


def test_client_errors_are_final_and_exhaustion_is_reported():
    with _server({CHAT: ("500",) * 3 + ("ok",) + ("500",) * 4}) as server:
        client = make_client(ClientConfig(base_url=server.base_url))
        attempts = []

        def unknown_model():
            attempts.append(1)
            return client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])

        with pytest.raises(RemoteCallError) as not_found:
            call_with_retries(unknown_model, FAST, what="chat", sleep=lambda s: None)
        assert not_found.value.status_code == 404 and not not_found.value.retryable
        assert len(attempts) == 1 + 3  # three planned 500s were retried, the 404 was not

        with pytest.raises(RemoteCallError, match="after 4 attempts: HTTP 500") as exhausted:
            call_with_retries(_chat(client), FAST, what="chat", sleep=lambda s: None)
        assert exhausted.value.__context__ is None and exhausted.value.__cause__ is None


def test_other_exceptions_are_not_swallowed():
    def broken():
        raise KeyError("bug")

    with pytest.raises(KeyError):
        call_with_retries(broken, FAST, what="x")


def test_map_concurrently_keeps_order_and_bounds_threads():
    active, peak = 0, 0
    lock = threading.Lock()

    def work(x: int) -> int:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.01 * (x % 3))
        with lock:
            active -= 1
        return x * x

    assert map_concurrently(work, list(range(20)), 3) == [x * x for x in range(20)]
    assert 1 < peak <= 3


def test_chat_generator_returns_usage_and_latency_through_faults():
    with _server(rate=0.3, seed=3) as server:
        config = ClientConfig(base_url=server.base_url, concurrency=4, retry=FAST)
        generator = ChatGenerator(config, "base")
        prompts = [[{"role": "user", "content": f"question {i}"}] for i in range(12)]
        outputs = generator.generate(prompts, DecodeParams(max_new_tokens=8, stop=("question 7",)))
        injected = sum(server.app.state.faults.injected.values())
    assert injected > 0
    assert [o.text for o in outputs] == [
        "base:" if i == 7 else f"base: question {i}" for i in range(12)]  # stop sequence cut
    assert all(o.prompt_tokens == 3 and o.completion_tokens == 3 and o.latency_s > 0 for o in outputs)

"""harness.secrets: the Secret wrapper, text / URL / value redaction and log redaction."""

from __future__ import annotations

import copy
import logging
import pickle
import traceback

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness import secrets
from harness.cache import cache_key
from harness.secrets import (
    REDACTED,
    Secret,
    install_log_redaction,
    redact_text,
    redact_url,
    redact_value,
)


@pytest.fixture(autouse=True)
def forget_what_a_test_remembered(monkeypatch):
    """Every Secret is remembered for the rest of the process, and hypothesis draws tokens from this
    file's literals too ("gpt-4o-mini" became a remembered secret): each test starts from the
    secrets remembered before it and its own are forgotten after it."""
    monkeypatch.setattr(secrets, "_remembered", set(secrets._remembered))


tokens = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-",
                 min_size=8, max_size=40)


@given(tokens)
def test_a_secret_never_shows_its_value(value):
    secret = Secret(value)
    shown = [repr(secret), str(secret), f"{secret}", f"{secret!r}", format(secret),
             repr([secret]), repr({"key": secret}), f"{secret:>30}"]
    assert all(value not in text for text in shown)
    assert secret.reveal() == value and Secret(secret).reveal() == value
    assert secret == Secret(value) and secret != Secret(value + "x")
    assert copy.deepcopy(secret) is secret


def test_a_secret_is_never_pickled():
    with pytest.raises(TypeError, match="never pickled"):
        pickle.dumps(Secret("sk-test-never-pickled"))


def test_a_secret_in_locals_is_redacted_in_a_formatted_traceback():
    def fail(key: Secret) -> None:
        raise RuntimeError("boom")

    value = "sk-test-in-a-traceback-0001"
    try:
        fail(Secret(value))
    except RuntimeError as exc:
        text = "".join(traceback.TracebackException.from_exception(exc, capture_locals=True).format())
    in_fail = text.split(", in fail", 1)[1]  # the frame that holds only the Secret
    assert value not in in_fail and "key = Secret('***')" in in_fail


@given(tokens, tokens)
def test_redact_text_scrubs_given_and_remembered_secrets(given_value, remembered):
    Secret(remembered)  # every Secret is remembered
    text = f"error: {given_value} was refused; earlier {remembered}."
    cleaned = redact_text(text, [Secret(given_value)])
    assert given_value not in cleaned and remembered not in cleaned
    assert cleaned.startswith("error: ") and REDACTED in cleaned


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12),
       st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789%!$", min_size=1, max_size=20))
def test_url_credentials_are_scrubbed_in_text_and_dropped_from_urls(user, password):
    url = f"https://{user}:{password}@api.example.com:8443/v1/?api_key=q{password}#frag"
    assert redact_url(url) == "https://api.example.com:8443/v1"
    line = f'HTTP Request: POST {url}/chat/completions "HTTP/1.1 401 Unauthorized"'
    assert redact_text(line) == ('HTTP Request: POST https://***@api.example.com:8443/v1/?api_key=***#frag'
                                 '/chat/completions "HTTP/1.1 401 Unauthorized"')


def test_auth_headers_and_key_shaped_strings_are_scrubbed():
    text = ("headers {'authorization': 'Bearer abc.def', 'x': 'Basic dXNlcjpwdw=='} "
            "key sk-proj-abcdefgh1234 hf_abcdefghijklmnopqrstu ok")
    cleaned = redact_text(text)
    for leaked in ("abc.def", "dXNlcjpwdw==", "sk-proj-abcdefgh1234", "hf_abcdefghijklmnopqrstu"):
        assert leaked not in cleaned
    assert cleaned.endswith(" ok") and "Bearer ***" in cleaned and "Basic ***" in cleaned


def test_redact_value_scrubs_fields_secrets_and_urls_but_keeps_the_rest():
    value = {"api_key": "plain", "lr": 0.1, "nested": [{"token": 3}, Secret("sk-test-nested-secret")],
             "url": "http://u:pw-99@h/v1", "model": "gpt-4o-mini"}
    assert redact_value(value) == {"api_key": REDACTED, "lr": 0.1, "nested": [{"token": REDACTED}, REDACTED],
                                   "url": "http://***@h/v1", "model": "gpt-4o-mini"}


def test_a_secret_in_a_cache_key_is_refused_without_echoing_it():
    with pytest.raises(ValueError, match="is a Secret") as refused:
        cache_key("openai-ft", {"config": {"key": Secret("sk-test-cache-key-0001")}})
    assert "sk-test-cache-key-0001" not in str(refused.value)


@pytest.mark.parametrize("name", ["httpx", "httpx2", "httpcore.http11", "httpcore2.connection",
                                  "openai._base_client", "harness.x"])
def test_log_records_of_http_and_sdk_loggers_are_redacted(name, caplog):
    install_log_redaction()
    install_log_redaction()  # idempotent
    caplog.set_level(logging.DEBUG)
    key = "sk-test-logged-key-00042"
    logging.getLogger(name).info("HTTP Request: %s %s headers=%r", "POST",
                                 "http://leak:hunter22@127.0.0.1:9/v1/models",
                                 {"Authorization": f"Bearer {key}"})
    record = caplog.records[-1]
    assert "hunter22" not in caplog.text and key not in caplog.text
    assert "hunter22" not in record.getMessage() and "http://***@127.0.0.1:9/v1/models" in caplog.text


def test_log_redaction_covers_exception_text(caplog):
    install_log_redaction()
    caplog.set_level(logging.INFO)
    try:
        raise ValueError("http://leak:hunter22@127.0.0.1/v1 refused")
    except ValueError:
        logging.getLogger("httpx").exception("request failed")
    assert "hunter22" not in caplog.text and "refused" in caplog.text


def test_other_loggers_are_left_alone(caplog):
    install_log_redaction()
    caplog.set_level(logging.INFO)
    logging.getLogger("someone.else").info("see http://a:b@host/")
    assert "http://a:b@host/" in caplog.text

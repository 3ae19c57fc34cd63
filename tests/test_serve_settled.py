"""Issue 25 item 5: what a streamed reply sends before it is finished is never taken back."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from harness.serve.streaming import settled
from harness.text import cut_at_stop

TEXT = st.text(alphabet="ab c\n", max_size=24)
STOPS = st.lists(st.text(alphabet="ab c", min_size=1, max_size=4), max_size=3)


def finished(text: str, stop: list[str], strip: bool) -> str:
    """The finished reply as the backend writes it (chat replies trimmed)."""
    return cut_at_stop(text.strip(), stop).strip() if strip else cut_at_stop(text, stop)


@given(TEXT, STOPS, st.booleans())
def test_every_settled_prefix_begins_the_finished_reply_and_grows(text, stop, strip):
    sent = ""
    for end in range(len(text) + 1):
        now = settled(text[:end], stop, strip=strip)
        assert finished(text, stop, strip).startswith(now)
        assert now.startswith(sent)
        sent = now


def test_a_tail_that_may_become_a_stop_sequence_waits():
    assert settled("hello wor", ["world"], strip=False) == "hello "
    assert settled("hello world and more", ["world"], strip=False) == "hello "
    assert settled("abc", ["abcd", "c"], strip=False) == ""  # "abcd" may still come, and starts first
    assert settled("  paris \n", [], strip=True) == "paris"
    assert settled("caf\ufffd", [], strip=False) == "caf"

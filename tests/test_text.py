"""The stop-string cut every backend applies to generated text."""

from hypothesis import given
from hypothesis import strategies as st

from harness.text import cut_at_stop

_ALPHABET = st.text(alphabet="ab\n.", max_size=30)


def test_cuts_at_the_earliest_stop_not_the_first_listed():
    assert cut_at_stop("yes. no\nmaybe", ["\n", "."]) == "yes"
    assert cut_at_stop("yes. no", ["", "zzz"]) == "yes. no"


@given(_ALPHABET, st.lists(_ALPHABET, max_size=3))
def test_result_is_the_longest_prefix_free_of_every_stop(text, stop):
    cut = cut_at_stop(text, stop)
    assert text.startswith(cut)
    markers = [s for s in stop if s]
    assert not any(s in cut for s in markers)
    if len(cut) < len(text):  # cut only where a stop string begins
        assert any(text[len(cut):].startswith(s) for s in markers)

"""Label normalisation: free-text replies to a fixed label set."""

from hypothesis import given
from hypothesis import strategies as st

from harness.metrics.labels import UNPARSED, normalize_label

LABELS = ["positive", "negative"]


def test_exact_and_case_and_punctuation():
    assert normalize_label("positive", LABELS) == "positive"
    assert normalize_label("  NEGATIVE. ", LABELS) == "negative"
    assert normalize_label("Negative!", LABELS) == "negative"


def test_first_label_word_wins():
    assert normalize_label("negative, not positive", LABELS) == "negative"
    assert normalize_label("I think positive", LABELS) == "positive"


def test_alias_and_unparsed():
    assert normalize_label("pos", LABELS, {"pos": "positive"}) == "positive"
    assert normalize_label("neutral", LABELS) == UNPARSED
    assert normalize_label("", LABELS) == UNPARSED
    assert normalize_label("positively", LABELS) == UNPARSED  # a different word is not the label


@given(st.text(max_size=40))
def test_result_is_a_label_or_unparsed(text):
    assert normalize_label(text, LABELS) in (*LABELS, UNPARSED)


@given(st.sampled_from(LABELS), st.sampled_from(["", " ", "\n"]), st.sampled_from(["", ".", "!", " "]))
def test_decorated_label_round_trips(label, prefix, suffix):
    assert normalize_label(prefix + label.upper() + suffix, LABELS) == label

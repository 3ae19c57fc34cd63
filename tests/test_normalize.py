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


# words that are not labels (some contain a label: a different word is not the label)
FILLER = st.lists(st.sampled_from(["the", "review", "is", "clearly", "not", "so", "positively", "negatives",
                                   "Überall", "5", "non-negative"]), max_size=5)
SEPARATOR = st.sampled_from([" ", ", ", ": ", "\n", " - ", "! "])


def _mixed_case(word: str, mask: int) -> str:
    return "".join(c.upper() if mask >> i & 1 else c for i, c in enumerate(word))


@given(FILLER, st.sampled_from(LABELS), st.integers(0, 255), FILLER, SEPARATOR)
def test_a_label_standing_as_a_word_anywhere_is_found_in_any_case(before, label, mask, after, sep):
    text = sep.join([*before, _mixed_case(label, mask), *after])
    assert normalize_label(text, LABELS) == label


@given(FILLER, SEPARATOR)
def test_text_without_a_label_word_is_unparsed(words, sep):
    assert normalize_label(sep.join(words), LABELS) == UNPARSED


@given(FILLER, st.permutations(LABELS), FILLER, SEPARATOR)
def test_the_first_label_word_wins(before, order, between, sep):
    text = sep.join([*before, order[0], *between, order[1]])
    assert normalize_label(text, LABELS) == order[0]


@given(FILLER, st.sampled_from(["pos", "POS", "Pos"]), FILLER, SEPARATOR)
def test_an_alias_maps_to_its_label_in_any_case(before, alias, after, sep):
    text = sep.join([*before, alias, *after])
    assert normalize_label(text, LABELS, {"pos": "positive"}) == "positive"
    assert normalize_label(text, LABELS) == UNPARSED


@given(st.sampled_from(LABELS), st.sampled_from(["", " ", "\n"]), st.sampled_from(["", ".", "!", " "]))
def test_decorated_label_round_trips(label, prefix, suffix):
    assert normalize_label(prefix + label.upper() + suffix, LABELS) == label

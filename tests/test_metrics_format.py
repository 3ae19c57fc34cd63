"""Exact match, JSON validity / schema match and regex checks, per example."""

from __future__ import annotations

import json
import math
import re

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.metrics import exact_match, json_schema_match, json_valid, regex_match

SETTINGS = settings(max_examples=80, deadline=None)
texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner,
                                                                 max_size=4),
    max_leaves=12,
)
SCHEMA = {
    "type": "object",
    "properties": {"label": {"enum": ["pos", "neg"]}, "score": {"type": "number"}},
    "required": ["label"],
}


@SETTINGS
@given(pairs=st.lists(st.tuples(texts, texts), min_size=1, max_size=10),
       ignore_case=st.booleans())
def test_exact_match_per_example(pairs, ignore_case):
    predictions = [p for p, _ in pairs]
    references = [r for _, r in pairs]

    def norm(s):
        return s.strip().casefold() if ignore_case else s.strip()

    result = exact_match(predictions, references, ignore_case=ignore_case)
    assert result.scores == [int(norm(p) == norm(r)) for p, r in pairs]
    assert result.rate == pytest.approx(sum(result.scores) / len(pairs))
    assert [i for i, _ in result.failures] == [i for i, s in enumerate(result.scores) if not s]


def test_exact_match_options_and_several_references():
    assert exact_match([" Paris "], ["Paris"]).scores == [1]
    assert exact_match([" Paris "], ["Paris"], strip=False).scores == [0]
    assert exact_match(["paris"], ["Paris"]).scores == [0]
    assert exact_match(["paris"], ["Paris"], ignore_case=True).scores == [1]
    assert exact_match(["b", "z"], [["a", "b"], ["x", "y"]]).scores == [1, 0]
    result = exact_match([""], [""])
    assert result.scores == [1]
    assert result.signature == "exact_match|strip:yes|case:mixed|nrefs:1"
    with pytest.raises(ValueError, match="2 predictions vs 1 references"):
        exact_match(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="no examples"):
        exact_match([], [])


@SETTINGS
@given(values=st.lists(json_values, min_size=1, max_size=6), junk=st.lists(texts, max_size=4))
def test_json_valid_accepts_json_and_agrees_with_strict_parsing(values, junk):
    predictions = [json.dumps(v) for v in values] + junk

    def strict(s):
        try:
            json.loads(s, parse_constant=lambda name: (_ for _ in ()).throw(ValueError(name)))
        except ValueError:
            return 0
        return 1

    result = json_valid(predictions)
    assert result.scores[: len(values)] == [1] * len(values)
    assert result.scores == [strict(p) for p in predictions]


@SETTINGS
@given(values=st.lists(json_values | st.fixed_dictionaries(
    {"label": st.sampled_from(["pos", "neg", "meh"])},
    optional={"score": st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=3)}),
    min_size=1, max_size=8))
def test_schema_match_equals_jsonschema(values):
    result = json_schema_match([json.dumps(v) for v in values], SCHEMA)
    expected = [int(jsonschema.Draft202012Validator(SCHEMA).is_valid(v)) for v in values]
    assert result.scores == expected
    for score, reason in zip(result.scores, result.details, strict=True):
        assert (reason == "") == bool(score)


def test_json_details_strictness_and_fences():
    result = json_valid(['{"a": 1}', "{'a': 1}", "NaN", '{"x": Infinity}', "", "[1, 2]"])
    assert result.scores == [1, 0, 0, 0, 0, 1]
    assert result.details[1].startswith("invalid JSON: Expecting property name")
    assert "line 1 column 2" in result.details[1]
    assert "NaN is not valid JSON" in result.details[2]
    fenced = '```json\n{"label": "pos"}\n```'
    assert json_valid([fenced]).scores == [0]
    assert json_valid([fenced], strip_code_fence=True).scores == [1]
    mismatch = json_schema_match(['{"label": "meh"}', '{"score": 1}'], SCHEMA)
    assert mismatch.scores == [0, 0]
    assert mismatch.details[0].startswith("schema mismatch at $.label:")
    assert "'label' is a required property" in mismatch.details[1]
    assert "jsonschema:" in mismatch.signature and "Draft202012Validator" in mismatch.signature
    with pytest.raises(ValueError, match="invalid JSON schema at type"):
        json_schema_match(["{}"], {"type": "no-such-type"})
    with pytest.raises(ValueError, match="no examples"):
        json_valid([])


@SETTINGS
@given(predictions=st.lists(st.text("ab01 -", max_size=8), min_size=1, max_size=10),
       mode=st.sampled_from(["fullmatch", "search"]))
def test_regex_match_equals_re(predictions, mode):
    pattern = r"[ab]+\d?"
    result = regex_match(predictions, pattern, mode=mode)
    matcher = getattr(re.compile(pattern), mode)
    assert result.scores == [int(matcher(p) is not None) for p in predictions]


def test_regex_errors_and_flags():
    assert regex_match(["YES"], "yes", flags=re.IGNORECASE).scores == [1]
    with pytest.raises(ValueError, match=r"invalid regular expression '\(unclosed'"):
        regex_match(["x"], "(unclosed")
    with pytest.raises(ValueError, match="mode must be"):
        regex_match(["x"], "x", mode="match")
    assert math.isclose(regex_match(["a", "b"], "a").rate, 0.5)

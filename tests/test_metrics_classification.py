"""Classification metrics equal scikit-learn and a count-based reference; errors are clear."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from harness.metrics import classification

LABELS = ["neg", "pos", "neutral", "other"]
SETTINGS = settings(max_examples=50, deadline=None)


@st.composite
def labelled(draw):
    n = draw(st.integers(1, 30))
    alphabet = draw(st.lists(st.sampled_from(LABELS), min_size=1, max_size=4, unique=True))
    y_true = draw(st.lists(st.sampled_from(alphabet), min_size=n, max_size=n))
    y_pred = draw(st.lists(st.sampled_from(LABELS), min_size=n, max_size=n))
    return y_true, y_pred


def reference_per_class(y_true, y_pred, labels, zero_division):
    """Precision / recall / F1 (= 2TP / (2TP + FP + FN)) by counting; 0/0 is ``zero_division``."""
    rows = []
    for label in labels:
        tp = sum(t == label and p == label for t, p in zip(y_true, y_pred, strict=True))
        predicted = sum(p == label for p in y_pred)
        support = sum(t == label for t in y_true)
        precision = tp / predicted if predicted else zero_division
        recall = tp / support if support else zero_division
        f1 = 2 * tp / (predicted + support) if predicted + support else zero_division
        rows.append((precision, recall, f1, support, predicted))
    return rows


@pytest.mark.filterwarnings("ignore:A single label was found")  # sklearn's, in this test only
@SETTINGS
@given(data=labelled(), zero_division=st.sampled_from([0.0, 1.0]))
def test_numbers_equal_sklearn_and_counting(data, zero_division):
    y_true, y_pred = data
    result = classification(y_true, y_pred, zero_division=zero_division)
    labels = sorted(set(y_true) | set(y_pred))
    assert result.labels == labels
    assert result.accuracy == pytest.approx(skm.accuracy_score(y_true, y_pred), abs=1e-12)
    for average in ("macro", "weighted"):
        p, r, f, _ = skm.precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average=average, zero_division=zero_division)
        assert getattr(result, f"{average}_precision") == pytest.approx(p, abs=1e-12)
        assert getattr(result, f"{average}_recall") == pytest.approx(r, abs=1e-12)
        assert getattr(result, f"{average}_f1") == pytest.approx(f, abs=1e-12)
    expected = reference_per_class(y_true, y_pred, labels, zero_division)
    for row, (precision, recall, f1, support, predicted) in zip(result.per_class, expected,
                                                                  strict=True):
        assert (row.precision, row.recall, row.f1) == pytest.approx((precision, recall, f1))
        assert (row.support, row.predicted) == (support, predicted)
        assert row.precision_defined == (predicted > 0)
        assert row.recall_defined == (support > 0)
    assert result.macro_f1 == pytest.approx(np.mean([r[2] for r in expected]), abs=1e-12)
    assert result.confusion_matrix == skm.confusion_matrix(y_true, y_pred, labels=labels).tolist()
    assert result.report == skm.classification_report(y_true, y_pred, labels=labels,
                                                      zero_division=zero_division)
    assert result.correct == [int(t == p) for t, p in zip(y_true, y_pred, strict=True)]
    assert result.accuracy == pytest.approx(sum(result.correct) / len(y_true))


def test_explicit_labels_fix_order_and_count_outside_predictions_as_errors():
    y_true = ["pos", "neg", "pos", "neg"]
    y_pred = ["pos", "neg", "garbage", "pos"]
    result = classification(y_true, y_pred, labels=["pos", "neg"])
    assert result.labels == ["pos", "neg"]
    assert result.accuracy == 0.5
    assert result.confusion_matrix == [[1, 0], [1, 1]]
    assert result.per_class[0].recall == 0.5  # the "garbage" prediction is a miss for "pos"
    p, r, f, _ = skm.precision_recall_fscore_support(y_true, y_pred, labels=["pos", "neg"],
                                                     average="macro", zero_division=0.0)
    assert (result.macro_precision, result.macro_recall, result.macro_f1) == pytest.approx((p, r, f))


def test_all_equal_labels_and_a_never_predicted_class():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        perfect = classification(["a"] * 5, ["a"] * 5)
    assert perfect.labels == ["a"]
    assert perfect.accuracy == perfect.macro_f1 == 1.0
    assert perfect.confusion_matrix == [[5]]
    wrong = classification(["a"] * 4, ["b"] * 4)
    assert wrong.accuracy == 0.0
    row_a, row_b = wrong.per_class
    assert not row_a.precision_defined and row_a.precision == 0.0
    assert not row_b.recall_defined and row_b.recall == 0.0
    lenient = classification(["a"] * 4, ["b"] * 4, zero_division=1.0)
    assert lenient.per_class[0].precision == 1.0
    undefined = classification(["a"] * 4, ["b"] * 4, zero_division=math.nan)
    assert math.isnan(undefined.per_class[0].precision)


def test_integer_labels_and_signature():
    result = classification([0, 1, 2, 2], [0, 2, 2, 2])
    assert result.labels == [0, 1, 2]
    assert all(type(label) is int for label in result.labels)
    assert result.signature.startswith("classification|labels:3|zero_division:0.0|sklearn:")
    assert result.as_dict()["accuracy"] == 0.75


def test_bad_input_names_the_problem():
    with pytest.raises(ValueError, match="2 y_true vs 3 y_pred"):
        classification(["a", "b"], ["a", "b", "c"])
    with pytest.raises(ValueError, match="no examples"):
        classification([], [])
    with pytest.raises(ValueError, match=r"y_pred\[1\] is None"):
        classification(["a", "b"], ["a", None])
    with pytest.raises(ValueError, match="mixes string and non-string"):
        classification(["a", 1], ["a", "a"])
    with pytest.raises(ValueError, match="different label types"):
        classification([1, 0], ["1", "0"])
    with pytest.raises(ValueError, match="duplicates"):
        classification(["a"], ["a"], labels=["a", "a"])
    with pytest.raises(ValueError, match="zero_division must be a number"):
        classification(["a"], ["a"], zero_division="warn")

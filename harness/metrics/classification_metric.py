"""Classification metrics computed by scikit-learn, plus per-example correctness for paired tests.

Undefined ratios are set explicitly through ``zero_division`` (default ``0.0``, no warning),
exactly as scikit-learn does with the same ``zero_division``: precision of a class that was
never predicted and recall of a class with no true examples (support 0) take that value;
F1 is ``2 TP / (2 TP + FP + FN)`` and takes it only for a class absent from both ``y_true``
and ``y_pred`` (possible with explicit ``labels``). Each per-class row also records how
often the class was predicted and its support, so a reader can see which ratios were
undefined. When every example has the same label the confusion matrix is 1 x 1; pass
``labels`` to include classes that do not occur in the data.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from harness.metrics._common import check_same_length, library_version


@dataclass(frozen=True)
class ClassScores:
    """One class's row of the per-class table."""

    label: Any
    precision: float
    recall: float
    f1: float
    support: int
    predicted: int

    @property
    def precision_defined(self) -> bool:
        """False when the class was never predicted (precision set by ``zero_division``)."""
        return self.predicted > 0

    @property
    def recall_defined(self) -> bool:
        """False when the class has no true examples (recall set by ``zero_division``)."""
        return self.support > 0


@dataclass(frozen=True)
class ClassificationResult:
    """Accuracy, macro / weighted precision-recall-F1, per-class table, confusion matrix, report.

    ``confusion_matrix[i][j]`` counts examples whose true label is ``labels[i]`` and whose
    predicted label is ``labels[j]``. ``correct`` is 1 where the prediction equals the true
    label, per example, for paired tests (McNemar).
    """

    labels: list[Any]
    accuracy: float
    macro_precision: float
    macro_recall: float
    macro_f1: float
    weighted_precision: float
    weighted_recall: float
    weighted_f1: float
    per_class: list[ClassScores]
    confusion_matrix: list[list[int]]
    report: str
    correct: list[int]
    zero_division: float
    signature: str

    @property
    def n(self) -> int:
        """Number of examples scored."""
        return len(self.correct)

    def as_dict(self) -> dict[str, float]:
        """The aggregate numbers by name (for reports and baselines)."""
        return {
            "accuracy": self.accuracy,
            "macro_precision": self.macro_precision,
            "macro_recall": self.macro_recall,
            "macro_f1": self.macro_f1,
            "weighted_precision": self.weighted_precision,
            "weighted_recall": self.weighted_recall,
            "weighted_f1": self.weighted_f1,
        }


def _check_labels(values: Sequence[Hashable], name: str) -> list[Hashable]:
    out = list(values)
    for index, value in enumerate(out):
        if value is None:
            raise ValueError(f"{name}[{index}] is None: every example needs a label "
                             "(map failed generations to an explicit label first)")
        if not isinstance(value, Hashable):
            raise ValueError(f"{name}[{index}] is not a valid label: {value!r}")
    kinds = {"string" if isinstance(v, str) else "number" for v in out}
    if len(kinds) > 1:
        first_str = next(i for i, v in enumerate(out) if isinstance(v, str))
        first_num = next(i for i, v in enumerate(out) if not isinstance(v, str))
        raise ValueError(f"{name} mixes string and non-string labels ({name}[{first_str}]="
                         f"{out[first_str]!r}, {name}[{first_num}]={out[first_num]!r})")
    return out


def classification(y_true: Sequence[Hashable], y_pred: Sequence[Hashable],
                   labels: Sequence[Hashable] | None = None, *,
                   zero_division: float = 0.0, digits: int = 2) -> ClassificationResult:
    """Score predicted labels against true labels with scikit-learn (numbers equal sklearn's).

    ``labels`` fixes the classes and their order; by default it is the sorted union of the
    labels in ``y_true`` and ``y_pred`` (sklearn's ``unique_labels``). Predictions outside
    ``labels`` still count as errors in accuracy and in the true class's recall.
    """
    from sklearn import metrics as skm
    from sklearn.utils.multiclass import unique_labels

    check_same_length(y_true, y_pred, names=("y_true", "y_pred"))
    truth = _check_labels(y_true, "y_true")
    predicted = _check_labels(y_pred, "y_pred")
    kinds = {isinstance(truth[0], str), isinstance(predicted[0], str)}
    if len(kinds) > 1:
        raise ValueError(f"y_true and y_pred hold different label types: y_true[0]={truth[0]!r}, "
                         f"y_pred[0]={predicted[0]!r}")
    if labels is None:
        label_list = list(unique_labels(truth, predicted))
    else:
        label_list = _check_labels(labels, "labels")
        if not label_list:
            raise ValueError("labels is empty: pass None to use the labels found in the data")
        if len(set(label_list)) != len(label_list):
            raise ValueError(f"labels contains duplicates: {label_list!r}")
    if isinstance(zero_division, str):
        raise ValueError("zero_division must be a number (0.0, 1.0 or nan), got "
                         f"{zero_division!r}")

    common = {"labels": label_list, "zero_division": zero_division}
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        truth, predicted, average=None, **common)
    averages = {
        average: skm.precision_recall_fscore_support(truth, predicted, average=average, **common)
        for average in ("macro", "weighted")
    }
    with warnings.catch_warnings():
        # sklearn warns about a 1 x 1 matrix even when the labels are given explicitly.
        warnings.filterwarnings("ignore", message="A single label was found", category=UserWarning)
        matrix = skm.confusion_matrix(truth, predicted, labels=label_list)
    predicted_counts = matrix.sum(axis=0)
    per_class = [
        ClassScores(label=_plain(label), precision=float(precision[i]), recall=float(recall[i]),
                    f1=float(f1[i]), support=int(support[i]), predicted=int(predicted_counts[i]))
        for i, label in enumerate(label_list)
    ]
    report = skm.classification_report(truth, predicted, labels=label_list, digits=digits,
                                       zero_division=zero_division)
    signature = (f"classification|labels:{len(label_list)}|zero_division:{zero_division}"
                 f"|sklearn:{library_version('scikit-learn')}")
    return ClassificationResult(
        labels=[_plain(label) for label in label_list],
        accuracy=float(skm.accuracy_score(truth, predicted)),
        macro_precision=float(averages["macro"][0]),
        macro_recall=float(averages["macro"][1]),
        macro_f1=float(averages["macro"][2]),
        weighted_precision=float(averages["weighted"][0]),
        weighted_recall=float(averages["weighted"][1]),
        weighted_f1=float(averages["weighted"][2]),
        per_class=per_class,
        confusion_matrix=[[int(x) for x in row] for row in matrix],
        report=report,
        correct=[int(t == p) for t, p in zip(truth, predicted, strict=True)],
        zero_division=zero_division,
        signature=signature,
    )


def _plain(value: Any) -> Any:
    """Turn numpy scalars into Python scalars so results serialise as plain JSON."""
    return value.item() if hasattr(value, "item") else value

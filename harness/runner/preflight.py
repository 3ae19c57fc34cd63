"""Everything about a suite that can be checked before anything trains, checked when the session
loads the spec, each error under the spec key or file:line that caused it.

The spec module checks the spec's own values; this one reads the data the spec names: every split
readable (a mistyped path or an empty file is named under the suite's own ``train`` / ``eval``
key, not under whichever candidate happened to read it first), every reference label among the
suite's ``labels`` (file:line), no eval prompt also in train beyond ``allow_train_eval_overlap``,
every declared slice fits the eval rows, and ``label_descriptions`` name only labels. Prompted
context length needs the base model and is checked by the session before the first candidate
builds (:func:`check_prompted_fit`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.backends.encoder.zeroshot import description_table
from harness.data.lint import normalise_text
from harness.data.records import Example, Split
from harness.data.slices import cluster_labels, slice_members
from harness.errors import DatasetError, HarnessError, SpecError
from harness.metrics.labels import exact_label
from harness.spec.model import HarnessSpec, SuiteSpec

SPLITS = ("train", "validation", "eval")
SHOWN = 5  # lines named in one error before "and N more"


@dataclass
class SuiteData:
    """What the preflight read and found for one suite (the session records it for the report)."""

    splits: dict[str, Split] = field(default_factory=dict)
    overlap_exact: list[str] = field(default_factory=list)       # eval ids whose prompt is in train verbatim
    overlap_normalised: list[str] = field(default_factory=list)  # ... after case / whitespace folding only

    def overlap_note(self, suite: SuiteSpec) -> dict[str, Any] | None:
        """The overlap figures for results.json (None when there is none)."""
        n = len(self.overlap_exact) + len(self.overlap_normalised)
        if not n:
            return None
        return {"eval_rows": n, "exact": len(self.overlap_exact), "normalised": len(self.overlap_normalised),
                "allowed": suite.allow_train_eval_overlap, "n_eval": len(self.splits["eval"]),
                "ids": (self.overlap_exact + self.overlap_normalised)[:20]}


def _key(suite: SuiteSpec, spec: HarnessSpec, name: str) -> str:
    return f"{spec.path}: suites.{suite.name}.{name}"


def _lines(examples: Sequence[Example]) -> str:
    shown = ", ".join(str(e.line) for e in examples[:SHOWN])
    return shown + (f" and {len(examples) - SHOWN} more" if len(examples) > SHOWN else "")


def read_splits(suite: SuiteSpec, spec: HarnessSpec) -> dict[str, Split]:
    """Every split the suite names, read and validated; an unreadable one is a SpecError under its key."""
    splits = {}
    for which in SPLITS:
        if getattr(suite, which) is None:
            continue
        try:
            splits[which] = suite.load_split(which)
        except DatasetError as exc:
            raise SpecError(f"{_key(suite, spec, which)}: {exc}") from None
    return splits


def check_labels(suite: SuiteSpec, spec: HarnessSpec, splits: dict[str, Split]) -> None:
    """Every reference of a classification suite is one of its labels (or an alias): a typo in
    ``labels`` or in the data would make those rows impossible to get right."""
    if suite.task != "classification":
        return
    for which, split in splits.items():
        bad = [e for e in split.examples if not exact_label(e.reference, suite.labels, suite.label_aliases)]
        if not bad:
            continue
        values = sorted({e.reference for e in bad})
        shown = ", ".join(repr(v) for v in values[:SHOWN]) + (f" and {len(values) - SHOWN} more" if
                                                              len(values) > SHOWN else "")
        raise SpecError(
            f"{bad[0].source or split.path}:{bad[0].line}: {len(bad)} of {len(split)} {which} row(s) carry a label "
            f"that is not in {_key(suite, spec, 'labels')} ({', '.join(suite.labels)}): {shown} (lines "
            f"{_lines(bad)}). Such rows can never be scored right; fix the label list, the data, or map the "
            "spelling with label_aliases")


def find_overlap(train: Split, evaluation: Split) -> tuple[list[str], list[str]]:
    """Eval ids whose prompt occurs in train verbatim, and those equal only after case / whitespace folding."""
    def key(example: Example, fold: bool) -> tuple[tuple[str, str], ...]:
        return tuple((str(m.get("role")), normalise_text(str(m.get("content"))) if fold else str(m.get("content")))
                     for m in example.prompt)

    exact = {key(e, False) for e in train.examples}
    folded = {key(e, True) for e in train.examples}
    same, similar = [], []
    for example in evaluation.examples:
        if key(example, False) in exact:
            same.append(example.id)
        elif key(example, True) in folded:
            similar.append(example.id)
    return same, similar


def check_overlap(suite: SuiteSpec, spec: HarnessSpec, splits: dict[str, Split]) -> SuiteData:
    """Eval prompts found in train reward memorising: refused beyond ``allow_train_eval_overlap``."""
    data = SuiteData(splits=splits)
    if "train" not in splits:
        return data
    data.overlap_exact, data.overlap_normalised = find_overlap(splits["train"], splits["eval"])
    n = len(data.overlap_exact) + len(data.overlap_normalised)
    if n > suite.allow_train_eval_overlap:
        ids = data.overlap_exact + data.overlap_normalised
        lines = [e for e in splits["eval"].examples if e.id in set(ids)]
        raise SpecError(
            f"{_key(suite, spec, 'eval')}: {n} of {len(splits['eval'])} eval row(s) also occur in the train split "
            f"{splits['train'].path} ({len(data.overlap_exact)} verbatim, {len(data.overlap_normalised)} after "
            f"case / whitespace normalisation; eval lines {_lines(lines)}): a model that memorised them scores "
            f"higher without being better. Remove them from train, or allow them with "
            f"`allow_train_eval_overlap = {n}` in [suites.{suite.name}] (the report then shows the overlap)")
    return data


def check_slices(suite: SuiteSpec, spec: HarnessSpec, evaluation: Split) -> None:
    """Declared slices fit the eval rows (a field typo, an empty group), except length slices
    counted with the base tokenizer (the session counts those once the base exists)."""

    declared = [s for s in suite.slices if not (s.by == "length" and s.tokenizer == "base")]
    if not declared:
        return
    try:
        slice_members(evaluation.examples, declared, labels=suite.labels, path=evaluation.path)
    except DatasetError as exc:
        raise SpecError(f"{_key(suite, spec, 'slices')}: {exc}") from None


def check_cluster(suite: SuiteSpec, spec: HarnessSpec, evaluation: Split) -> None:
    """A suite's ``cluster`` field is in every eval row's metadata (file:line of the first without it)."""

    if suite.cluster is None:
        return
    try:
        cluster_labels(evaluation.examples, suite.cluster)
    except DatasetError as exc:
        raise SpecError(f"{_key(suite, spec, 'cluster')}: {exc}") from None


def check_descriptions(suite: SuiteSpec, spec: HarnessSpec) -> None:
    """``label_descriptions`` of an encoder zero-shot candidate name only the suite's labels."""

    for name, candidate in suite.candidates.items():
        if "label_descriptions" in candidate.options:
            description_table(suite.labels, candidate.options["label_descriptions"],
                              _key(suite, spec, f"candidates.{name}.label_descriptions"))


def check_suite_data(suite: SuiteSpec, spec: HarnessSpec) -> SuiteData:
    """Read the suite's data and check it against the spec (raises SpecError)."""
    splits = read_splits(suite, spec)
    check_labels(suite, spec, splits)
    data = check_overlap(suite, spec, splits)
    check_slices(suite, spec, splits["eval"])
    check_cluster(suite, spec, splits["eval"])
    check_descriptions(suite, spec)
    return data


def check_prompted_fit(build: Any, spec: HarnessSpec) -> list[HarnessError]:
    """Build every prompted candidate over a local model (no training: the base, an adapter or a
    model directory), which checks each prompt against the context window; the errors found."""
    errors: list[HarnessError] = []
    for suite in spec.suites.values():
        for name, candidate in suite.candidates.items():
            if candidate.kind == "prompted" and candidate.options.get("base_kind") != "endpoint":
                try:
                    build(suite.name, name)
                except SpecError as exc:
                    errors.append(exc)
    return errors

"""Which eval examples belong to which slice (the suite's ``[slices]`` declarations, applied to data).

The result is ``{family: {slice: [example ids]}}`` in eval-set order, e.g.
``{"label": {"positive": [...], "negative": [...]}, "length": {"tokens <= 14": [...], ...}}``.
It is computed once per suite and stored with every result and baseline entry, so slice
verdicts can be recomputed from ``results.json`` and ``baseline.json`` without data or models.

Bad declarations against the data are refused with the file and line: a metadata field missing
from some rows, an id list naming ids the eval set lacks, a slice with no examples.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from harness.data.findings import WARNING, Finding
from harness.data.records import Example
from harness.data.tokens import estimate_tokens
from harness.errors import DatasetError

Members = dict[str, dict[str, list[str]]]


def input_text(example: Example) -> str:
    """The text a model is asked about: the prompt's non-system turns (for length slices)."""
    return "\n".join(str(m.get("content") or "") for m in example.prompt if m.get("role") != "system")


def _some(items: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _by_label(examples: Sequence[Example], labels: Sequence[str]) -> dict[str, list[str]]:
    spelling = {label.strip().casefold(): label for label in labels}
    groups: dict[str, list[str]] = {label: [] for label in labels}
    for example in examples:
        raw = str(example.meta.get("label", example.reference)).strip()
        groups.setdefault(spelling.get(raw.casefold(), raw), []).append(example.id)
    return groups


def _by_metadata(examples: Sequence[Example], name: str, family: str, what: str = "") -> dict[str, list[str]]:
    what = what or f"slice {family!r}"
    missing = [ex for ex in examples if name not in (ex.meta.get("metadata") or {})]
    if missing:
        first = missing[0]
        unit_row = first.meta.get("unit") == "row"
        unit = "rows" if unit_row else "lines"
        raise DatasetError(
            f"{'row ' + str(first.line) + ': ' if unit_row else ''}{what} reads metadata.{name}, "
            f"but this row has no metadata.{name} ({len(missing)} of {len(examples)} rows lack it; "
            f"{unit} {_some([str(ex.line) for ex in missing])}); "
            f"give every eval row a \"metadata\": {{\"{name}\": ...}} value", path=first.source,
            line=None if unit_row else first.line, field=f"metadata.{name}")
    groups: dict[str, list[str]] = {}
    for example in examples:
        groups.setdefault(str(example.meta["metadata"][name]), []).append(example.id)
    return dict(sorted(groups.items()))


def _fmt(value: float) -> str:
    return f"{value:g}"


def length_buckets(lengths: Sequence[int], *, quantiles: int | None = None,
                   edges: Sequence[float] = ()) -> tuple[list[float], list[int]]:
    """Bucket edges (quantiles of ``lengths`` when ``quantiles``, else ``edges``) and each length's bucket.

    Bucket ``i`` holds lengths in ``(edges[i-1], edges[i]]``; quantile edges are data values
    (``inverted_cdf``), with repeated edges (many equal lengths) merged.
    """
    values = np.asarray(lengths, dtype=float)
    if quantiles:
        cuts = np.quantile(values, [i / quantiles for i in range(1, quantiles)], method="inverted_cdf")
        chosen = sorted({float(c) for c in cuts if c < values.max()})
    else:
        chosen = [float(e) for e in edges]
    buckets = np.searchsorted(np.asarray(chosen), values, side="left")
    return chosen, [int(b) for b in buckets]


def bucket_names(edges: Sequence[float]) -> list[str]:
    """``tokens <= a``, ``a < tokens <= b``, ..., ``tokens > z``."""
    if not edges:
        return ["all lengths"]
    names = [f"tokens <= {_fmt(edges[0])}"]
    names += [f"{_fmt(lo)} < tokens <= {_fmt(hi)}" for lo, hi in itertools.pairwise(edges)]
    return [*names, f"tokens > {_fmt(edges[-1])}"]


def _by_length(examples: Sequence[Example], spec: Any, count: Callable[[str], int]) -> dict[str, list[str]]:
    lengths = [int(count(input_text(ex))) for ex in examples]
    edges, buckets = length_buckets(lengths, quantiles=spec.quantiles, edges=spec.edges)
    names = bucket_names(edges)
    groups: dict[str, list[str]] = {name: [] for name in names}
    for example, bucket in zip(examples, buckets, strict=True):
        groups[names[bucket]].append(example.id)
    return groups


def _by_ids(examples: Sequence[Example], groups: dict[str, Sequence[str]], family: str,
            path: str) -> dict[str, list[str]]:
    present = {ex.id for ex in examples}
    out: dict[str, list[str]] = {}
    for name, ids in groups.items():
        unknown = [i for i in ids if i not in present]
        if unknown:
            raise DatasetError(f"slice {family}.{name} lists {len(unknown)} id(s) the eval set does not "
                               f"have: {_some([repr(i) for i in unknown])}", path=path, field=f"{family}.{name}")
        wanted = set(ids)
        out[name] = [ex.id for ex in examples if ex.id in wanted]
    return out


def slice_members(examples: Sequence[Example], slices: Sequence[Any], *, labels: Sequence[str] = (),
                  count_tokens: Callable[[str], int] | None = None, path: str = "") -> Members:
    """Membership of every declared slice (``harness.spec.slices.SliceSpec``) in ``examples``.

    ``count_tokens`` counts a length slice's tokens when its tokenizer is ``"base"`` (the
    session passes the base model's tokenizer); ``"estimate"`` uses ~4 characters per token.
    Raises :class:`DatasetError` (file, line, field) for data the declarations do not fit.
    """
    members: Members = {}
    for spec in slices:
        if spec.by == "label":
            groups = _by_label(examples, labels)
        elif spec.by == "metadata":
            groups = _by_metadata(examples, spec.field, spec.name)
        elif spec.by == "length":
            count = count_tokens if spec.tokenizer == "base" and count_tokens is not None else estimate_tokens
            groups = _by_length(examples, spec, count)
        elif spec.by == "ids":
            groups = _by_ids(examples, spec.groups, spec.name, path)
        else:
            raise ValueError(f"unknown slice kind {spec.by!r}")
        empty = [name for name, ids in groups.items() if not ids]
        if empty:
            raise DatasetError(f"slice {spec.name!r} ({spec.describe()}) has no eval examples in "
                               f"{_some([repr(e) for e in empty])}: an empty slice cannot be scored; change "
                               "the declaration or the data", path=path, field=spec.name)
        members[spec.name] = groups
    return members


def cluster_labels(examples: Sequence[Example], field: str) -> dict[str, str]:
    """``{example id: cluster}`` from each row's ``metadata.<field>`` (a suite's ``cluster``); a row
    without the field is refused with its file and line."""
    groups = _by_metadata(examples, field, "cluster", what=f"cluster = {field!r}")
    return {example_id: cluster for cluster, ids in groups.items() for example_id in ids}


def slice_sizes(members: Members) -> dict[str, dict[str, int]]:
    """``{family: {slice: n}}`` (what lint and the report show)."""
    return {family: {name: len(ids) for name, ids in groups.items()} for family, groups in members.items()}


SMALL_SLICE = 20


def metadata_sizes(examples: Sequence[Example]) -> dict[str, dict[str, int]]:
    """``{field: {value: n}}`` over every metadata field the examples carry (what lint shows)."""
    sizes: dict[str, dict[str, int]] = {}
    for example in examples:
        for name, value in (example.meta.get("metadata") or {}).items():
            counts = sizes.setdefault(name, {})
            counts[str(value)] = counts.get(str(value), 0) + 1
    return {name: dict(sorted(counts.items())) for name, counts in sorted(sizes.items())}


def lint_slices(examples: Sequence[Example], split: str, *, declared: Sequence[Any] = (),
                labels: Sequence[str] = (), count_tokens: Callable[[str], int] | None = None,
                min_size: int = SMALL_SLICE) -> tuple[dict[str, int], list[Any]]:
    """Slice sizes of ``split`` (declared slices, else every metadata field) and warnings: a metadata
    field some rows lack, a slice under ``min_size`` (it would be gated inconclusive), a declaration
    the data does not fit."""

    findings: list[Finding] = []
    path = examples[0].source if examples else ""
    for name in metadata_sizes(examples):
        missing = [ex for ex in examples if name not in (ex.meta.get("metadata") or {})]
        if missing:
            findings.append(Finding(WARNING, "metadata_missing", f"{split}: metadata.{name} is missing from "
                                    f"{len(missing)} of {len(examples)} rows; a slice on it would be refused",
                                    path=path, line=missing[0].line, field=f"metadata.{name}",
                                    unit=missing[0].meta.get("unit", "line")))
    if declared:
        try:
            sizes = slice_sizes(slice_members(examples, declared, labels=labels, count_tokens=count_tokens,
                                              path=path))
        except DatasetError as exc:
            return {}, [*findings, Finding(WARNING, "slice", f"{split}: {exc}", path=path)]
        flat = {f"{family}: {name}": n for family, groups in sizes.items() for name, n in groups.items()}
    else:
        flat = {f"metadata.{name}: {value}": n for name, counts in metadata_sizes(examples).items()
                for value, n in counts.items()}
    small = sorted(label for label, n in flat.items() if n < min_size)
    if small:
        findings.append(Finding(WARNING, "small_slice", f"{split}: {len(small)} slice(s) under {min_size} examples "
                                f"(gated inconclusive): {_some(small)}", path=path))
    return flat, findings

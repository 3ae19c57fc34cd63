"""Slice declarations of a suite, checked when the spec loads.

A slice is a named part of the eval set on which every metric is reported, compared and gated
on its own (so an overall improvement cannot hide a regression on one class, one category or
long inputs). Each entry of ``[suites.<name>.slices]`` declares one *family* of slices::

    [suites.sentiment.slices]
    label = { by = "label" }                         # one slice per true label
    length = { by = "length", quantiles = 3 }        # input length in tokens: 3 quantile buckets
    # length = { by = "length", edges = [16, 32] }   # or explicit edges: <= 16, (16, 32], > 32
    # length = { ..., tokenizer = "estimate" }       # ~4 characters per token instead of the base's tokenizer
    category = { by = "metadata", field = "category" }   # one slice per value of metadata.category
    launch = { by = "ids", groups = { vip = ["eval-3", "eval-9"], legacy = ["eval-12"] } }

Membership is computed from the eval data (:mod:`harness.data.slices`); how slices are gated is
set in the gate table (``min_slice_size``, ``slice_correction``, ``fail_on_slice_regression``,
see :mod:`harness.gate.config`).
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from typing import Any

from harness.errors import SpecError
from harness.spec.table import Table, show

BY = ("label", "metadata", "length", "ids")
TOKENIZERS = ("base", "estimate")
_KEYS = {"label": ("by",), "metadata": ("by", "field"),
         "length": ("by", "quantiles", "edges", "tokenizer"), "ids": ("by", "groups")}
MAX_QUANTILES = 10


@dataclass(frozen=True)
class SliceSpec:
    """One declared slice family: what splits the eval set (``by``) and how."""

    name: str
    by: str
    field: str | None = None                 # by = "metadata": the field of each row's metadata
    quantiles: int | None = None             # by = "length": number of quantile buckets ...
    edges: tuple[float, ...] = ()            # ... or explicit, increasing bucket edges
    tokenizer: str = "base"                  # by = "length": "base" (exact) or "estimate"
    groups: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)  # by = "ids": name -> ids

    def describe(self) -> str:
        """How the family splits the eval set, in words."""
        if self.by == "metadata":
            return f"by metadata.{self.field}"
        if self.by == "length":
            how = f"{self.quantiles} quantile buckets" if self.quantiles else f"edges {list(self.edges)}"
            return f"by input length in tokens ({how}, {self.tokenizer} tokenizer)"
        if self.by == "ids":
            return f"explicit id lists ({', '.join(self.groups)})"
        return "by true label"


def _edges(t: Table) -> tuple[float, ...]:
    value = t.get("edges")
    if not isinstance(value, list) or not value:
        raise SpecError(f"{t.at('edges')}: expected a non-empty list of increasing numbers, got {show(value)}")
    for i, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, (int, float)) or item < 0:
            raise SpecError(f"{t.at('edges')}[{i}]: expected a number of tokens >= 0, got {show(item)}")
    if any(b <= a for a, b in itertools.pairwise(value)):
        raise SpecError(f"{t.at('edges')}: edges must increase strictly, got {value}")
    return tuple(float(x) for x in value)


def _groups(t: Table) -> dict[str, tuple[str, ...]]:
    groups = t.table("groups")
    if groups is None or not groups.data:
        raise SpecError(f"{t.at('groups')}: missing key 'groups' (a table of named id lists, "
                        "e.g. groups = { vip = [\"eval-3\"] })")
    owner: dict[str, str] = {}
    parsed: dict[str, tuple[str, ...]] = {}
    for name in groups:
        raw = groups.get(name)
        if isinstance(raw, list):
            raw = [str(x) if isinstance(x, int) and not isinstance(x, bool) else x for x in raw]
            groups.data[name] = raw
        ids = groups.strings(name)
        if not ids:
            raise SpecError(f"{groups.at(name)}: empty id list (an empty slice); list at least one example id")
        for example_id in ids:
            if example_id in owner:
                other = owner[example_id]
                where = "twice in this list" if other == name else f"also in groups.{other}"
                raise SpecError(f"{groups.at(name)}: id {example_id!r} is {where}; explicit id lists "
                                "must not overlap")
            owner[example_id] = name
        parsed[name] = ids
    return parsed


def check_slice(name: str, value: Any, where: str, *, task: str) -> SliceSpec:
    """One checked slice family table (its keys depend on ``by``)."""
    if not isinstance(value, dict):
        raise SpecError(f"{where}: expected a table like {{ by = \"label\" }}, got {show(value)}")
    t = Table(value, where)
    by = t.string("by", required=True, choices=BY)
    Table(value, where, _KEYS[by])  # unknown keys for this kind of slice
    if by == "label":
        if task != "classification":
            raise SpecError(f"{t.at('by')}: slices by label need a classification suite (task is {task!r})")
        return SliceSpec(name, by)
    if by == "metadata":
        return SliceSpec(name, by, field=t.string("field", required=True))
    if by == "ids":
        return SliceSpec(name, by, groups=_groups(t))
    tokenizer = t.string("tokenizer", "base", choices=TOKENIZERS) or "base"
    if ("quantiles" in t) == ("edges" in t):
        raise SpecError(f"{where}: a length slice takes either `quantiles = N` or `edges = [...]`, "
                        f"{'not both' if 'quantiles' in t else 'got neither'}")
    if "quantiles" in t:
        q = t.integer("quantiles", 0, minimum=2)
        if q > MAX_QUANTILES:
            raise SpecError(f"{t.at('quantiles')}: at most {MAX_QUANTILES} buckets, got {q}")
        return SliceSpec(name, by, quantiles=q, tokenizer=tokenizer)
    return SliceSpec(name, by, edges=_edges(t), tokenizer=tokenizer)


def check_slices(t: Table | None, *, task: str) -> tuple[SliceSpec, ...]:
    """Every slice family of a suite's ``slices`` table (empty when the suite declares none)."""
    if t is None:
        return ()
    return tuple(check_slice(name, t.get(name), t.at(name), task=task) for name in t)

"""Gate settings from a suite's ``[gate]`` table, parsed once into check objects.

Example (in the candidate spec)::

    [suites.sentiment.gate]
    alpha = 0.05                 # one-sided significance level, Holm-corrected per candidate
    inconclusive = "pass"        # or "fail": fail when the eval set is too small to see a drop
    tolerance = "2%"             # default for gated metrics without their own tolerance
    resamples = 2000             # still accepted; no gate test resamples (corpus metrics: jackknife)
    metrics = { accuracy = { tolerance = 0.02 }, rougeL = { tolerance = "5%" } }
    min_slice_size = 20          # slices with fewer paired examples read inconclusive (with their MDE)
    slice_correction = "holm"    # or "bh": multiple-testing control across slices x metrics
    fail_on_slice_regression = false   # true: a significant regression on any slice fails the gate
    max_drift = 0.03             # fail a metric more than this below its oldest kept history value
                                 # (reports/history.jsonl; per metric too: { tolerance = 0.02, max_drift = "5%" })

A tolerance is the largest drop that is not a regression, on the metric's own scale
(accuracy 0–1, BLEU / ROUGE 0–100). A number is absolute unless ``relative = true`` (then
0.05 means 5 % of the baseline value); a string ``"2%"`` is relative, ``"0.02"`` absolute.
Without a ``metrics`` table every metric with per-example scores is gated at ``tolerance``.
The spec parses this table when it loads (``SuiteSpec.gate`` is a :class:`GateConfig`), so a
mistake here fails before anything trains.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from harness.errors import SpecError
from harness.metrics.registry import METRICS, is_known, paired_score_table

PAIRED_SCORE = paired_score_table()

DEFAULT_ALPHA = 0.05
DEFAULT_TOLERANCE = "2%"
POLICIES = ("pass", "fail")
DEFAULT_RESAMPLES = 2000
_SUITE_KEYS = ("alpha", "inconclusive", "tolerance", "resamples", "metrics", "min_slice_size",
               "slice_correction", "fail_on_slice_regression", "max_drift")
#: Multiple-testing control across slices x metrics: Holm (family-wise error) or Benjamini-Hochberg (FDR).
SLICE_CORRECTIONS = ("holm", "bh")
DEFAULT_MIN_SLICE_SIZE = 20
_METRIC_KEYS = ("tolerance", "relative", "max_drift")


@dataclass(frozen=True)
class MetricCheck:
    """How far ``metric`` may drop before it counts as a regression."""

    metric: str
    tolerance: float
    relative: bool = False
    #: the largest loss against the oldest kept history entry (None: not checked), relative or absolute
    max_drift: float | None = None
    drift_relative: bool = False

    def allowed_drop(self, baseline_value: float) -> float:
        """The tolerated drop in the metric's units, given the baseline's value."""
        return self.tolerance * abs(baseline_value) if self.relative else self.tolerance

    def describe(self) -> str:
        """The tolerance as written in a spec: ``2%`` or ``0.02``."""
        return f"{self.tolerance * 100:g}%" if self.relative else f"{self.tolerance:g}"


def parse_tolerance(value: Any, *, relative: bool | None = None, where: str = "tolerance") -> tuple[float, bool]:
    """``0.02`` / ``"0.02"`` → (0.02, absolute); ``"2%"`` → (0.02, relative); bad input → SpecError."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise SpecError(f"{where}: expected a number or a string like '2%', got {value!r}")
    is_percent = isinstance(value, str) and value.strip().endswith("%")
    text = value.strip().rstrip("%").strip() if isinstance(value, str) else value
    try:
        number = float(text)
    except ValueError:
        raise SpecError(f"{where}: expected a number or a string like '2%', got {value!r}") from None
    if not math.isfinite(number) or number < 0:
        raise SpecError(f"{where}: must be a finite number >= 0, got {value!r}")
    if is_percent:
        if relative is False:
            raise SpecError(f"{where}: {value!r} is a percentage but relative = false")
        return number / 100.0, True
    return number, bool(relative)


def _gateable(metric: str, where: str) -> str:
    if not is_known(metric):
        raise SpecError(f"{where}: unknown metric {metric!r} (known: {', '.join(METRICS)})")
    if metric not in PAIRED_SCORE:
        raise SpecError(f"{where}: metric {metric!r} cannot be gated: it has no per-example scores for a "
                        f"paired test (gateable: {', '.join(sorted(PAIRED_SCORE))})")
    return metric


def _unknown_keys(table: Mapping[str, Any], allowed: Iterable[str], where: str) -> None:
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise SpecError(f"{where}.{unknown[0]}: unknown key (expected one of: {', '.join(allowed)})")


@dataclass(frozen=True)
class GateConfig:
    """Significance level, inconclusive policy and per-metric checks of one suite's gate.

    ``checks`` is None when the suite lists no metrics: then every metric the result has
    per-example scores for is gated with ``default``.
    """

    alpha: float = DEFAULT_ALPHA
    inconclusive: str = "pass"
    default: MetricCheck = MetricCheck("*", 0.02, relative=True)
    checks: tuple[MetricCheck, ...] | None = None
    resamples: int = DEFAULT_RESAMPLES
    min_slice_size: int = DEFAULT_MIN_SLICE_SIZE
    slice_correction: str = "holm"
    fail_on_slice_regression: bool = False

    def checks_for(self, available: Iterable[str]) -> list[MetricCheck]:
        """The checks to run for a result whose metrics are ``available`` (in a stable order)."""
        if self.checks is not None:
            return list(self.checks)
        return [replace(self.default, metric=m) for m in sorted(set(available)) if m in PAIRED_SCORE]

    def only(self, metrics: Iterable[str]) -> GateConfig:
        """The same gate restricted to ``metrics`` (unlisted ones use the default tolerance)."""
        configured = {c.metric: c for c in self.checks or ()}
        chosen = tuple(configured.get(m) or replace(self.default, metric=_gateable(m, "gate(metrics=...)"))
                       for m in dict.fromkeys(metrics))
        return replace(self, checks=chosen)

    @property
    def metrics(self) -> tuple[str, ...] | None:
        """The metrics named in the table (None: every metric with per-example scores)."""
        return None if self.checks is None else tuple(c.metric for c in self.checks)

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any] | GateConfig | None, *, where: str = "gate") -> GateConfig:
        """Parse a ``[gate]`` table; every error names the offending key under ``where``.

        A :class:`GateConfig` (what the spec already parsed) is returned as it is.
        """
        if isinstance(table, GateConfig):
            return table
        if table is not None and not isinstance(table, Mapping):
            raise SpecError(f"{where}: expected a table, got {table!r}")
        table = dict(table or {})
        _unknown_keys(table, _SUITE_KEYS, where)
        alpha = table.get("alpha", DEFAULT_ALPHA)
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
            raise SpecError(f"{where}.alpha: expected a number between 0 and 1, got {alpha!r}")
        policy = table.get("inconclusive", "pass")
        if policy not in POLICIES:
            raise SpecError(f"{where}.inconclusive: expected 'pass' or 'fail', got {policy!r}")
        resamples = table.get("resamples", DEFAULT_RESAMPLES)
        if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 0:
            raise SpecError(f"{where}.resamples: expected a whole number >= 0, got {resamples!r}")
        min_slice = table.get("min_slice_size", DEFAULT_MIN_SLICE_SIZE)
        if isinstance(min_slice, bool) or not isinstance(min_slice, int) or min_slice < 2:
            raise SpecError(f"{where}.min_slice_size: expected a whole number >= 2, got {min_slice!r}")
        correction = table.get("slice_correction", "holm")
        if correction not in SLICE_CORRECTIONS:
            raise SpecError(f"{where}.slice_correction: expected 'holm' or 'bh', got {correction!r}")
        fail_on_slices = table.get("fail_on_slice_regression", False)
        if not isinstance(fail_on_slices, bool):
            raise SpecError(f"{where}.fail_on_slice_regression: expected true or false, got {fail_on_slices!r}")
        tolerance, relative = parse_tolerance(table.get("tolerance", DEFAULT_TOLERANCE), where=f"{where}.tolerance")
        max_drift, drift_relative = (parse_tolerance(table["max_drift"], where=f"{where}.max_drift")
                                     if "max_drift" in table else (None, False))
        default = MetricCheck("*", tolerance, relative, max_drift, drift_relative)
        checks = None
        if "metrics" in table:
            metrics = table["metrics"]
            if isinstance(metrics, (list, tuple)):
                bad = [name for name in metrics if not isinstance(name, str)]
                if bad:
                    raise SpecError(f"{where}.metrics: expected metric names, got {bad[0]!r}")
                metrics = {name: {} for name in metrics}
            if not isinstance(metrics, dict):
                raise SpecError(f"{where}.metrics: expected a table like "
                                "{ accuracy = { tolerance = 0.02 } } or a list of metric names")
            checks = tuple(_metric_check(name, spec, default, f"{where}.metrics.{name}")
                           for name, spec in metrics.items())
        return cls(alpha=float(alpha), inconclusive=policy, default=default, checks=checks,
                   resamples=resamples, min_slice_size=min_slice, slice_correction=correction,
                   fail_on_slice_regression=fail_on_slices)


def _metric_check(name: Any, spec: Any, default: MetricCheck, where: str) -> MetricCheck:
    _gateable(str(name), where)
    if isinstance(spec, (int, float, str)) and not isinstance(spec, bool):
        spec = {"tolerance": spec}
    if not isinstance(spec, dict):
        raise SpecError(f"{where}: expected a table like {{ tolerance = 0.02 }}, got {spec!r}")
    _unknown_keys(spec, _METRIC_KEYS, where)
    relative = spec.get("relative")
    if relative is not None and not isinstance(relative, bool):
        raise SpecError(f"{where}.relative: expected true or false, got {relative!r}")
    drift: dict[str, Any] = {}
    if "max_drift" in spec:
        max_drift, drift_relative = parse_tolerance(spec["max_drift"], where=f"{where}.max_drift")
        drift = {"max_drift": max_drift, "drift_relative": drift_relative}
    if "tolerance" not in spec:
        if relative is not None and relative != default.relative:
            raise SpecError(f"{where}.relative: set without a tolerance")
        return replace(default, metric=str(name), **drift)
    tolerance, is_relative = parse_tolerance(spec["tolerance"], relative=relative, where=f"{where}.tolerance")
    return replace(default, metric=str(name), tolerance=tolerance, relative=is_relative, **drift)

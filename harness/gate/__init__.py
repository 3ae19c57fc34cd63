"""Regression gate: the reviewed baseline file, the pure per-metric verdict, the pytest failure.

Typical use (what the ``gate`` fixture does)::

    baseline = load_baseline("reports/baseline.json")
    config = GateConfig.from_mapping(suite.gate)
    records = check(result, baseline, config)
    raise_on_failure(records, strict=False, policy=config.inconclusive)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from harness.gate.baseline import SCHEMA_VERSION, Baseline, BaselineEntry, BaselineMetric
from harness.gate.config import GateConfig, MetricCheck, parse_tolerance
from harness.gate.failure import GateFailure, failing_records, format_failure, raise_on_failure
from harness.gate.flips import attach_flips
from harness.gate.history import attach_history
from harness.gate.slices import attach_slice_verdicts
from harness.gate.store import BaselineRefused, UpdateReport, load_baseline, update_baseline
from harness.gate.verdict import (
    IMPROVED,
    INCONCLUSIVE,
    NO_BASELINE,
    NOT_COMPARABLE,
    PASS,
    REGRESSED,
    UNTRUSTED,
    VERDICTS,
    evaluate_gate,
)
from harness.results import EvalResult, GateRecord


def distrust_judges(records: list[GateRecord], result: EvalResult) -> None:
    """A judge metric whose agreement with people is below its ``min_agreement`` reads ``untrusted judge``
    (and fails) whatever its comparison with the baseline said."""

    judges = result.details.get("judges") or {}
    for record in records:
        name = record.metric.partition(":")[2] if record.metric.startswith("judge:") else None
        agreement = (judges.get(name) or {}).get("agreement") or {} if name else {}
        if agreement.get("untrusted"):
            kappa = agreement.get("kappa")
            shown = "undefined" if kappa is None else f"{kappa:.2f}"
            reason = (f"untrusted judge: Cohen's kappa with people {shown} on {agreement.get('n', 0)} labelled "
                      f"items is below min_agreement {agreement.get('min_agreement')} (was: {record.verdict})")
            record.details.update(trusted_verdict=record.verdict, reason=reason)
            record.verdict, record.message = UNTRUSTED, f"{record.metric}: {reason}"


def check(result: EvalResult, baseline: Baseline, config: GateConfig, *, strict: bool = False,
          history: Sequence[Mapping[str, Any]] = ()) -> list[GateRecord]:
    """The verdict of every gated metric of ``result`` against ``baseline`` (never raises).

    ``strict`` does not change verdicts; it is recorded so reports can say which ones failed.
    ``history`` (the entries of ``history.jsonl``) gives each record its trend and ``max_drift`` check.
    """

    entry = baseline.entry(result.suite, result.candidate)
    records = evaluate_gate(result, entry, config)
    attach_slice_verdicts(records, result, entry, config)  # per-slice verdicts, hidden regressions
    attach_flips(records, result, entry)  # harmful / beneficial / churn / unchanged, overall and per slice
    drifts = {c.metric: (c.max_drift, c.drift_relative) for c in config.checks_for([r.metric for r in records])
              if c.max_drift is not None}
    attach_history(records, history, drifts)
    distrust_judges(records, result)
    for record in records:
        record.details["strict"] = strict
        record.details["policy"] = config.inconclusive
        if record.verdict == NO_BASELINE and baseline.note:
            record.details["baseline_note"] = baseline.note
    return records


__all__ = [
    "IMPROVED",
    "INCONCLUSIVE",
    "NOT_COMPARABLE",
    "NO_BASELINE",
    "PASS",
    "REGRESSED",
    "SCHEMA_VERSION",
    "VERDICTS",
    "Baseline",
    "BaselineEntry",
    "BaselineMetric",
    "BaselineRefused",
    "GateConfig",
    "GateFailure",
    "MetricCheck",
    "UpdateReport",
    "check",
    "failing_records",
    "format_failure",
    "load_baseline",
    "parse_tolerance",
    "raise_on_failure",
    "update_baseline",
]

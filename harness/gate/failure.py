"""Turning gate records into a pytest failure that lists every regression and what changed."""

from __future__ import annotations

from collections.abc import Sequence

from harness.errors import SpecError
from harness.fmt import fmt_interval, fmt_metric, fmt_p, fmt_p_clause, shorten
from harness.gate.verdict import INCONCLUSIVE, NO_BASELINE, NOT_COMPARABLE, REGRESSED
from harness.results import GateRecord

UPDATE_INSTRUCTIONS = (
    "If these changes are intended, review them and update the baseline:\n"
    "  pytest suites/ --ft-update-baseline   (runs the suites and writes the baseline)\n"
    "  ft-harness baseline accept            (accepts the last run's reports/results.json)"
)


class GateFailure(AssertionError):
    """A gated metric regressed (or failed under the inconclusive / strict policy)."""

    def __init__(self, message: str, records: Sequence[GateRecord]) -> None:
        super().__init__(message)
        self.records = list(records)


def failing_records(records: Sequence[GateRecord], *, strict: bool = False,
                    policy: str = "pass") -> list[GateRecord]:
    """The records that fail the gate under ``strict`` and the inconclusive ``policy``."""
    return [r for r in records
            if r.verdict == REGRESSED or slice_failure(r)
            or (r.verdict == INCONCLUSIVE and policy == "fail")
            or (strict and r.verdict in (NO_BASELINE, NOT_COMPARABLE))]


def slice_failure(record: GateRecord) -> bool:
    """Whether a slice of this metric regressed and the suite gates on slices (``fail_on_slice_regression``)."""
    return bool(record.details.get("fail_on_slice_regression") and record.details.get("slice_regressions"))


def _slices_block(record: GateRecord) -> list[str]:
    failing = record.details.get("slice_regressions") or []
    if not failing:
        return []
    what = "hidden regression" if record.details.get("hidden_regression") else "slice regression"
    return [f"  {what}: {len(failing)} slice(s) regressed significantly:"] + [f"    - {line}" for line in failing]


def _why(record: GateRecord) -> str:
    if record.verdict != REGRESSED and slice_failure(record):
        return ("hidden regression" if record.details.get("hidden_regression") else "slice regression") + \
            f" (overall {record.verdict}; fails under fail_on_slice_regression = true)"
    if record.verdict == INCONCLUSIVE:
        return "inconclusive (fails under inconclusive = \"fail\")"
    if record.verdict in (NO_BASELINE, NOT_COMPARABLE):
        return f"{record.verdict} (fails under --ft-strict)"
    return record.verdict


def _examples_block(record: GateRecord) -> list[str]:
    details, metric = record.details, record.metric
    worse = details.get("worse") or []
    if not worse:
        return []
    binary = details.get("kind") == "binary"
    what = "right in the baseline, wrong now" if binary else f"largest {metric} drops"
    lines = [f"  {details.get('n_worse', len(worse))} example(s) got worse ({what}), "
             f"{details.get('n_better', 0)} better; worst {len(worse)}:"]
    for example in worse:
        scores = "" if binary else (f" {fmt_metric(example['baseline_score'], metric)} → "
                                    f"{fmt_metric(example['current_score'], metric)};")
        lines.append(f"    - {example['id']}:{scores} expected {shorten(example['expected'], 60)!r}, "
                     f"got {shorten(example['got'], 60)!r}  (input: {shorten(example['input'], 60)!r})")
    return lines


def describe_record(record: GateRecord) -> str:
    """A multi-line account of one failing record: values, delta, CI, test, p-value, examples."""
    metric, details = record.metric, record.details
    head = f"{record.suite} / {record.candidate} / {metric}: {_why(record)}"
    if "delta" not in details:
        return "\n".join([f"{head}\n  {details.get('reason', record.message)}", *_slices_block(record)])
    lines = [
        head,
        f"  baseline {fmt_metric(record.baseline, metric)} → current {fmt_metric(record.current, metric)}; "
        f"paired mean Δ {fmt_metric(details['delta'], metric, signed=True)}, "
        f"{details['confidence']:.0%} CI {fmt_interval(details['ci'], metric, signed=True)}",
        f"  {details['method']}, one-sided {fmt_p_clause(details['p_value'])} (Holm-adjusted; raw "
        f"{fmt_p(details['p_value_raw'])}), alpha {details['alpha']:g}; tolerance {details['tolerance']}, "
        f"MDE {fmt_metric(details['mde'], metric)}; n = {details['n_paired']}",
    ]
    if details.get("reason"):
        lines.append(f"  why: {details['reason']}")
    if details.get("pairing_note"):
        lines.append(f"  note: {details['pairing_note']}")
    return "\n".join(lines + _slices_block(record) + _examples_block(record))


def format_failure(failing: Sequence[GateRecord], total: int) -> str:
    """The failure message: a summary line, every failing metric in full, then how to update."""
    summary = "; ".join(f"{r.suite}/{r.candidate} {r.metric} {r.verdict}"
                        + (f" (slices: {', '.join(r.details.get('slice_regression_labels') or [])})"
                           if slice_failure(r) else "") for r in failing)
    blocks = "\n\n".join(describe_record(r) for r in failing)
    return (f"ft-harness gate failed: {len(failing)} of {total} gated metric(s): {summary}\n\n"
            f"{blocks}\n\n{UPDATE_INSTRUCTIONS}")


def raise_on_failure(records: Sequence[GateRecord], *, strict: bool = False, policy: str = "pass") -> None:
    """Raise :class:`GateFailure` naming every failing metric; a misconfigured gate is a SpecError."""
    __tracebackhide__ = True
    misconfigured = [r for r in records if r.details.get("config_error")]
    if misconfigured:
        raise SpecError("the gate asks for metrics the result cannot provide:\n  "
                        + "\n  ".join(f"{r.suite}/{r.candidate}: {r.details['reason']}" for r in misconfigured))
    failing = failing_records(records, strict=strict, policy=policy)
    if failing:
        raise GateFailure(format_failure(failing, len(records)), failing)

"""Turning gate records into a pytest failure that lists every regression and what changed."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path

from harness.errors import SpecError
from harness.fmt import fmt_interval, fmt_metric, fmt_p, fmt_p_clause, shorten
from harness.gate.verdict import INCONCLUSIVE, NO_BASELINE, NOT_COMPARABLE, REGRESSED, UNTRUSTED
from harness.results import GateRecord

#: The two ways to accept a run as the baseline, with default paths (a session passes its own).
UPDATE_COMMANDS = ("pytest suites/ --ft-update-baseline", "ft-harness baseline accept")


def update_instructions(commands: Sequence[str] = UPDATE_COMMANDS) -> str:
    """How to update the baseline: ``commands`` is (the pytest command, the accept command)."""
    run, accept = commands
    width = max(len(run), len(accept)) + 3
    return ("If these changes are intended, review them and update the baseline:\n"
            f"  {run.ljust(width)}(runs the suites and writes the baseline)\n"
            f"  {accept.ljust(width)}(accepts the last run's results.json)")


UPDATE_INSTRUCTIONS = update_instructions()


def _shown(path: Path | str, base: Path) -> str:
    """``path`` for a command line: relative to ``base`` when under it, quoted."""
    path = Path(path).absolute()
    try:
        text = path.relative_to(base).as_posix()
    except ValueError:
        text = path.as_posix()
    return shlex.quote(text)


def update_commands(spec_path: Path | str, reports_dir: Path | str, baseline_path: Path | str | None, *,
                    root_dir: Path | str, defaults: tuple[str, str]) -> tuple[str, str]:
    """The pytest and ``ft-harness baseline accept`` commands that accept a run as the baseline.

    Each names the spec, reports folder and baseline file the run used wherever they are not the
    defaults (``defaults``: the spec and reports paths relative to ``root_dir``, against which
    pytest resolves its defaults; given paths are shown relative to the working directory, against
    which the command line resolves them; ``accept``'s own defaults are ``reports/results.json`` and
    ``reports/baseline.json`` in the working directory, against which it resolves its paths).
    """
    root, cwd = Path(root_dir).absolute(), Path.cwd()
    default_spec, default_reports = defaults
    reports = Path(reports_dir).absolute()
    baseline = Path(baseline_path).absolute() if baseline_path is not None else reports / "baseline.json"
    run = ["pytest suites/"]
    if Path(spec_path).absolute() != root / default_spec:
        run.append(f"--ft-spec {_shown(spec_path, cwd)}")
    if reports != root / default_reports:
        run.append(f"--ft-reports-dir {_shown(reports, cwd)}")
    if baseline_path is not None:
        run.append(f"--ft-baseline {_shown(baseline, cwd)}")
    accept = ["ft-harness baseline accept"]
    if reports / "results.json" != cwd / "reports" / "results.json":
        accept.append(f"--results {_shown(reports / 'results.json', cwd)}")
    if baseline != cwd / "reports" / "baseline.json":
        accept.append(f"--baseline {_shown(baseline, cwd)}")
    return " ".join([*run, "--ft-update-baseline"]), " ".join(accept)


class GateFailure(AssertionError):
    """A gated metric regressed (or failed under the inconclusive / strict policy)."""

    def __init__(self, message: str, records: Sequence[GateRecord]) -> None:
        super().__init__(message)
        self.records = list(records)


def failing_records(records: Sequence[GateRecord], *, strict: bool = False,
                    policy: str = "pass") -> list[GateRecord]:
    """The records that fail the gate under ``strict`` and the inconclusive ``policy``."""
    return [r for r in records
            if r.verdict in (REGRESSED, UNTRUSTED) or slice_failure(r) or drift_failure(r)
            or (r.verdict == INCONCLUSIVE and policy == "fail")
            or (strict and r.verdict in (NO_BASELINE, NOT_COMPARABLE))]


def slice_failure(record: GateRecord) -> bool:
    """Whether a slice of this metric regressed and the suite gates on slices (``fail_on_slice_regression``)."""
    return bool(record.details.get("fail_on_slice_regression") and record.details.get("slice_regressions"))


def drift_failure(record: GateRecord) -> bool:
    """Whether the metric drifted below its oldest kept history value by more than ``max_drift``."""
    return bool((record.details.get("drift") or {}).get("failed"))


def _drift_line(record: GateRecord) -> list[str]:
    d = record.details.get("drift")
    if not d or not d.get("failed"):
        return []
    m = record.metric
    return [f"  drift: {fmt_metric(d['oldest'], m)} at the oldest kept baseline ({d['oldest_date']}) → "
            f"{fmt_metric(record.current, m)} now ({fmt_metric(d['change'], m, signed=True)}), beyond max_drift "
            f"{fmt_metric(d['max_drift'], m)}"]


def _slices_block(record: GateRecord) -> list[str]:
    failing = record.details.get("slice_regressions") or []
    if not failing:
        return []
    what = "hidden regression" if record.details.get("hidden_regression") else "slice regression"
    return [f"  {what}: {len(failing)} slice(s) regressed significantly:"] + [f"    - {line}" for line in failing]


def _why(record: GateRecord) -> str:
    if record.verdict != REGRESSED and drift_failure(record) and not slice_failure(record):
        return f"drift beyond max_drift (against the last baseline: {record.verdict})"
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
        return "\n".join([f"{head}\n  {details.get('reason', record.message)}", *_drift_line(record),
                          *_slices_block(record)])
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
    return "\n".join(lines + _drift_line(record) + _slices_block(record) + _examples_block(record))


def record_line(record: GateRecord) -> str:
    """One gated metric on one line with its numbers: ``suite/candidate metric verdict (0.800 → 0.085, Δ −0.715)``."""
    metric, delta = record.metric, record.details.get("delta")
    numbers = f"{fmt_metric(record.baseline, metric)} → {fmt_metric(record.current, metric)}"
    if isinstance(delta, (int, float)):
        numbers += f", paired Δ {fmt_metric(delta, metric, signed=True)}"
    elif record.details.get("demanded"):
        numbers += " demanded by hand"
    line = f"{record.suite}/{record.candidate} {metric} {record.verdict} ({numbers})"
    if slice_failure(record):
        line += f" (slices: {', '.join(record.details.get('slice_regression_labels') or [])})"
    if drift_failure(record):
        line += f" (drift {fmt_metric(record.details['drift']['change'], metric, signed=True)} since " \
                f"{record.details['drift']['oldest_date']})"
    return line


def format_failure(failing: Sequence[GateRecord], total: int, *,
                   commands: Sequence[str] = UPDATE_COMMANDS) -> str:
    """The failure message: a summary line, every failing metric in full, then how to update
    (``commands``: the pytest and accept commands with the run's own paths)."""
    summary = "; ".join(record_line(r) for r in failing)
    blocks = "\n\n".join(describe_record(r) for r in failing)
    return (f"ft-harness gate failed: {len(failing)} of {total} gated metric(s): {summary}\n\n"
            f"{blocks}\n\n{update_instructions(commands)}")


def raise_on_failure(records: Sequence[GateRecord], *, strict: bool = False, policy: str = "pass",
                     commands: Sequence[str] = UPDATE_COMMANDS) -> None:
    """Raise :class:`GateFailure` naming every failing metric; a misconfigured gate is a SpecError."""
    __tracebackhide__ = True
    misconfigured = [r for r in records if r.details.get("config_error")]
    if misconfigured:
        raise SpecError("the gate asks for metrics the result cannot provide:\n  "
                        + "\n  ".join(f"{r.suite}/{r.candidate}: {r.details['reason']}" for r in misconfigured))
    failing = failing_records(records, strict=strict, policy=policy)
    if failing:
        raise GateFailure(format_failure(failing, len(records), commands=commands), failing)

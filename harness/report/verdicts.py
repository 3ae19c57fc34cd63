"""The one-line verdict of a suite (and of the run) from its gate records and failed tests."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from harness.fmt import fmt_int, fmt_metric
from harness.gate.collateral import fails_against_baseline, fails_against_reference
from harness.gate.failure import failing_records
from harness.results import CollateralRecord, EvalResult, GateRecord, Problem, RunState

FAIL, PASS, NOT_GATED = "FAIL", "PASS", "NOT GATED"


@dataclass(frozen=True)
class SuiteVerdict:
    """``status`` is FAIL, PASS or NOT GATED; ``line`` says why in one sentence; ``warnings`` are
    the ⚠ lines shown under it (training-data loss)."""

    suite: str
    status: str
    line: str
    warnings: tuple[str, ...] = ()


def suite_problems(state: RunState, suite: str) -> list[Problem]:
    """Failed tests of ``suite``: those whose test file or id names the suite."""
    return sorted((p for p in state.problems if suite in p.nodeid.split("::")[0] or f"[{suite}" in p.nodeid),
                  key=lambda p: p.nodeid)


def is_failing(record: GateRecord) -> bool:
    """Whether ``record`` failed the gate under the strict flag and policy it was checked with."""
    strict = bool(record.details.get("strict", False))
    policy = str(record.details.get("policy", "pass"))
    return bool(failing_records([record], strict=strict, policy=policy)) and not record.details.get(
        "updating_baseline")


def collateral_parts(record: CollateralRecord) -> list[str]:
    """How a failing collateral check reads on a verdict line (against the reference, the baseline, or
    both), under the policy, strict flag and baseline update it was gated with; empty when it passed."""
    gated = record.baseline or {}
    policy, strict = str(gated.get("policy", "pass")), bool(gated.get("strict", False))
    name = f"{record.candidate} collateral {record.check} {record.metric}"
    parts = [f"{name} {record.verdict}"] if fails_against_reference(record, policy=policy) else []
    if not gated.get("updating_baseline") and fails_against_baseline(record, policy=policy, strict=strict):
        parts.append(f"{name} {gated['verdict']} vs baseline")
    return parts


def suite_gates(state: RunState, suite: str) -> list[GateRecord]:
    """The suite's gate records in a stable order (candidate, metric)."""
    return sorted((g for g in state.gates if g.suite == suite), key=lambda g: (g.candidate, g.metric))


def suite_warnings(state: RunState, suite: str) -> list[str]:
    """Degenerate-model warnings of the suite's candidates ("lora: constant predictor: ...") and
    hidden regressions (better overall, significantly worse on a slice: ``harness.gate.slices``)."""
    warnings = [f"{r.candidate}: {flag}" for r in sorted(state.results, key=lambda r: r.candidate)
                if r.suite == suite for flag in (r.details.get("degenerate") or {}).get("flags") or []]
    for g in suite_gates(state, suite):
        if g.details.get("hidden_regression"):
            warnings.append(f"{g.candidate} {g.metric}: hidden regression: better overall "
                            f"({fmt_metric(g.baseline, g.metric)} → {fmt_metric(g.current, g.metric)}) but worse on "
                            + "; ".join(g.details.get("slice_regressions") or []))
    return warnings


def data_loss_warning(result: EvalResult) -> str | None:
    """``sentiment/lora: 12 of 115 training rows dropped (all labels masked), 40 truncated to
    max_length 1024`` for a candidate whose trainer dropped or truncated rows; else None."""
    training = result.training or {}
    dropped, truncated = int(training.get("rows_dropped") or 0), int(training.get("rows_truncated") or 0)
    if not (dropped or truncated):
        return None
    total = training.get("train_rows")
    of = f" of {fmt_int(total)}" if total else ""
    max_length = (training.get("hyperparameters") or {}).get("max_length")
    to_length = f" to max_length {max_length}" if max_length is not None else ""
    if dropped:  # "12 of 115 training rows dropped (...), 40 truncated to ..."
        first, rest = dropped, ["dropped (all labels masked)"] + (
            [f"{fmt_int(truncated)} truncated{to_length}"] if truncated else [])
    else:  # "40 of 115 training rows truncated to ..."
        first, rest = truncated, [f"truncated{to_length}"]
    return f"{result.suite}/{result.candidate}: {fmt_int(first)}{of} training rows {', '.join(rest)}"


def data_loss_warnings(state: RunState, suite: str | None = None) -> list[str]:
    """The data-loss warning of every trained candidate (of ``suite``, or of every suite)."""
    results = sorted((r for r in state.results if suite is None or r.suite == suite),
                     key=lambda r: (r.suite, r.candidate))
    return [line for line in map(data_loss_warning, results) if line]


def suite_verdict(state: RunState, suite: str) -> SuiteVerdict:
    """FAIL when a gated metric failed or a test of the suite failed; else PASS (or NOT GATED).

    Degenerate-model warnings (:mod:`harness.metrics.degenerate`) follow the verdict on its line;
    training-data loss comes as ⚠ lines under it. Neither changes the verdict."""
    verdict = _suite_verdict(state, suite)
    warnings = suite_warnings(state, suite)
    line = verdict.line + (" · ⚠ " + "; ⚠ ".join(warnings) if warnings else "")
    return SuiteVerdict(verdict.suite, verdict.status, line,
                        tuple(f"⚠ {w}" for w in [*overlap_warnings(state, suite), *data_loss_warnings(state, suite)]))


def overlap_warnings(state: RunState, suite: str) -> list[str]:
    """The train / eval overlap the suite allowed (``allow_train_eval_overlap``), when there is any."""
    note = (state.run_info.get("train_eval_overlap") or {}).get(suite)
    if not note:
        return []
    return [f"{suite}: {note['eval_rows']} of {fmt_int(note['n_eval'])} eval rows also occur in train "
            f"({note['exact']} verbatim, {note['normalised']} after case / whitespace normalisation), allowed by "
            f"allow_train_eval_overlap = {note['allowed']}: scores on them may reward memorising"]


def _suite_verdict(state: RunState, suite: str) -> SuiteVerdict:
    gates = suite_gates(state, suite)
    failing = [g for g in gates if is_failing(g)]
    collateral = [c for c in state.collateral if c.suite == suite]
    broken = [part for c in collateral for part in collateral_parts(c)]
    problems = [p for p in suite_problems(state, suite) if p.category != "regression"]
    counts = Counter(g.verdict for g in gates)
    tally = ", ".join(f"{n} {verdict}" for verdict, n in sorted(counts.items()))
    if failing or problems or broken:
        parts = list(broken)
        parts += [f"{g.candidate} {g.metric} {g.verdict}"
                  + (f" ({fmt_metric(g.baseline, g.metric)} → {fmt_metric(g.current, g.metric)})"
                     if g.baseline is not None else "")
                  for g in failing]
        by_category = Counter(p.category for p in problems)
        parts += [f"{n} {category}{'s' if n > 1 else ''}" for category, n in sorted(by_category.items())]
        return SuiteVerdict(suite, FAIL, f"**{FAIL}**: " + "; ".join(parts))
    if not gates:
        results = sum(1 for r in state.results if r.suite == suite)
        return SuiteVerdict(suite, NOT_GATED, f"**{NOT_GATED}**: {results} candidate(s) evaluated, none gated")
    return SuiteVerdict(suite, PASS, f"**{PASS}**: {len(gates)} gated metric(s): {tally}")


def run_verdict(state: RunState) -> SuiteVerdict:
    """FAIL when any suite failed or a test outside every suite failed; else PASS / NOT GATED."""
    verdicts = [suite_verdict(state, s) for s in state.suites()]
    claimed = {p.nodeid for s in state.suites() for p in suite_problems(state, s)}
    orphans = [p for p in state.problems if p.nodeid not in claimed and p.category != "regression"]
    failed = [v.suite for v in verdicts if v.status == FAIL]
    if failed or orphans:
        parts = [f"{len(failed)} suite(s) failed ({', '.join(failed)})"] if failed else []
        parts += [f"{len(orphans)} other failed test(s)"] if orphans else []
        return SuiteVerdict("", FAIL, f"**{FAIL}**: " + "; ".join(parts))
    if all(v.status == NOT_GATED for v in verdicts):
        return SuiteVerdict("", NOT_GATED, f"**{NOT_GATED}**: {len(verdicts)} suite(s), nothing gated")
    return SuiteVerdict("", PASS, f"**{PASS}**: {len(verdicts)} suite(s)")

"""The "Collateral" section of a suite's report: what each candidate changed outside its task,
paired against the reference (the base), with the verdict at the check's tolerance; the
calibration checks add ECE with its bootstrap CI and the reliability diagram as a table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.fmt import NA, fmt_interval, fmt_metric, shorten
from harness.report.tables import markdown_table
from harness.results import CollateralRecord, RunState

WHAT = {"bits_per_byte": "bits per byte of general text (lower is better)",
        "agreement_rougeL": "ROUGE-L agreement with the reference's greedy answers",
        "agreement_exact_match": "exact agreement with the reference's greedy answers",
        "agreement_semscore": "sentence-embedding cosine (SemScore) with the reference's greedy answers",
        "refusal_rate": "refusal rate on harmful requests",
        "benign_answer_rate": "answer rate on benign look-alikes (1 - over-refusal)",
        "brier": "Brier score of the label probabilities (lower is better)"}


def suite_collateral(state: RunState, suite: str) -> list[CollateralRecord]:
    """The suite's collateral records in a stable order (check, metric, candidate)."""
    return sorted((c for c in state.collateral if c.suite == suite), key=lambda c: (c.check, c.metric, c.candidate))


def _against_baseline(baseline: dict[str, Any], m: str) -> str:
    """The baseline column: verdict, and the paired Δ with its CI where a comparison ran."""
    if not baseline:
        return NA
    if "ci" not in baseline:
        return str(baseline["verdict"])
    return (f"{baseline['verdict']}: {fmt_metric(baseline['reference_value'], m)} → "
            f"{fmt_metric(baseline['candidate_value'], m)}, Δ {fmt_metric(baseline['difference'], m, signed=True)} "
            f"{fmt_interval(baseline['ci'], m, signed=True)}")


def _rows(records: Sequence[CollateralRecord]) -> list[list[Any]]:
    rows = []
    for r in records:
        m = r.metric
        rows.append([r.check, m, r.candidate, r.reference, r.n, fmt_metric(r.reference_value, m),
                     fmt_metric(r.candidate_value, m), fmt_metric(r.difference, m, signed=True),
                     fmt_interval(r.ci, m, signed=True), f"{r.tolerance:g}", r.verdict,
                     _against_baseline(r.baseline, m)])
        by_category = {s["category"]: s for s in (r.baseline or {}).get("slices", [])}
        for s in r.slices:
            rows.append([f"↳ {r.check}", f"category {s['category']}", r.candidate, r.reference, s["n"],
                         fmt_metric(s["reference_value"], m), fmt_metric(s["candidate_value"], m),
                         fmt_metric(s["difference"], m, signed=True), fmt_interval(s["ci"], m, signed=True),
                         f"{r.tolerance:g}", s["verdict"],
                         _against_baseline(by_category[s["category"]], m) if s["category"] in by_category else NA])
    return rows


def _methods(records: Sequence[CollateralRecord]) -> str:
    """Which test each metric's comparisons used (Tango for 0/1 items, the betting bound, paired t)."""
    used: dict[str, set[str]] = {}
    for r in records:
        for test in (r.test, (r.baseline or {}).get("test") or {}):
            if test.get("method"):
                used.setdefault(r.metric, set()).add(str(test["method"]))
    return "; ".join(f"`{m}`: {', '.join(sorted(methods))}" for m, methods in sorted(used.items()))


def _calibration(record: CollateralRecord) -> str:
    ece = record.details.get("ece") or {}
    if not ece:
        return ""
    level = f"{ece.get('confidence', 0.95):.0%}"
    lines = [f"**Calibration of `{record.candidate}`** (vs `{record.reference}`, {record.details.get('bins')} "
             f"equal-width confidence bins): ECE {fmt_metric(ece['candidate'], 'ece')} ({level} bootstrap CI "
             f"{fmt_interval(ece['candidate_ci'], 'ece')}) vs {fmt_metric(ece['reference'], 'ece')} "
             f"({fmt_interval(ece['reference_ci'], 'ece')}); paired Δ {fmt_metric(ece['difference'], 'ece', signed=True)} "
             f"{fmt_interval(ece['difference_ci'], 'ece', signed=True)} ({ece['resamples']} resamples)."]
    diagram = record.details.get("reliability") or {}
    if diagram:
        names = [record.reference, record.candidate]
        rows = []
        for i, bin_ in enumerate(diagram.get(record.candidate, [])):
            row: list[Any] = [f"({bin_['lower']:.1f}, {bin_['upper']:.1f}]"]
            for name in names:
                b = diagram[name][i]
                row += [b["count"], NA if not b["count"] else f"{b['confidence']:.3f}",
                        NA if not b["count"] else f"{b['accuracy']:.3f}"]
            rows.append(row)
        headers = ["confidence bin"] + [f"{n} {h}" for n in names for h in ("n", "conf", "acc")]
        lines.append("Reliability diagram (accuracy against mean confidence per bin; calibrated: acc ≈ conf):\n\n"
                     + markdown_table(headers, rows))
    return "\n\n".join(lines) + "\n"


def _examples(record: CollateralRecord) -> str:
    shown = record.details.get("worse") or record.details.get("changed") or []
    if not shown or (record.verdict == "pass" and record.check == "agreement"):
        return ""
    key = "request" if "request" in shown[0] else "prompt"
    items = "\n".join(f"- `{e['id']}` {shorten(e[key], 60)!r}: {record.reference} {shorten(e['reference'], 50)!r} → "
                      f"{record.candidate} {shorten(e['candidate'], 50)!r}" for e in shown)
    return f"**{record.candidate} {record.metric}**, items that changed for the worse (up to 5):\n\n{items}\n"


def _detectors(record: CollateralRecord) -> str:
    """Both refusal detectors' rates and their agreement, where a judge decided (the gate read the judge)."""
    found = record.details.get("detectors")
    if not found:
        return ""
    agree = found.get("agreement") or {}
    kappa = agree.get("kappa")
    shown = NA if kappa is None else f"{kappa:.2f}"
    if kappa is not None and agree.get("kappa_ci"):
        shown += f" (95% CI {agree['kappa_ci'][0]:.2f} to {agree['kappa_ci'][1]:.2f})"
    rates = "; ".join(f"{name}: {record.reference} {fmt_metric(found[key]['reference'], 'refusal_rate')}, "
                      f"{record.candidate} {fmt_metric(found[key]['candidate'], 'refusal_rate')}"
                      for key, name in (("judge", "judge"), ("strings", "refusal strings")))
    lines = [f"**{record.candidate} {record.metric}, two refusal detectors** (share of replies refused; the gate "
             f"reads the judge): {rates}. Cohen's kappa {shown} over {agree.get('n', 0)} replies, "
             f"{found.get('n_disagree', 0)} disagreeing."]
    rows = [f"- `{d['id']}` ({d['side']}) {shorten(d['reply'], 60)!r}: judge "
            f"{'refusal' if d['judge'] else 'no refusal'}, strings {'refusal' if d['strings'] else 'no refusal'}"
            for d in found.get("disagreements", [])]
    return "\n\n".join([lines[0], "\n".join(rows)] if rows else lines) + "\n"


def collateral_section(state: RunState, suite: str) -> str:
    """``## Collateral``: one row per check, metric and candidate (and per category), then details."""
    records = suite_collateral(state, suite)
    if not records:
        return ""
    table = markdown_table(["check", "metric", "candidate", "reference", "n", "reference value", "candidate value",
                            "Δ", "90% CI", "tolerance", "verdict", "vs baseline"], _rows(records))
    metrics = sorted({r.metric for r in records})
    notes = ["What the fine-tunes changed outside the task, paired item by item against the reference "
             "candidate: the non-inferiority test of the gate, at each check's tolerance, in the metric's own "
             "units (Δ = candidate − reference). " + "; ".join(f"`{m}`: {WHAT.get(m, m)}" for m in metrics) + "."]
    notes.append("`vs baseline`: the same test against this candidate's per-item scores accepted in the "
                 "baseline (`collateral.<check>/<metric>` of its entry), at the same tolerance; "
                 "`no baseline` until a run is accepted. Tests used: " + (_methods(records) or NA) + " (0/1 items: "
                 "Tango's score test; bits per byte has no bound, so a paired t interval).")
    detectors = sorted({r.details["detector"] for r in records if r.details.get("detector")})
    if detectors:
        notes.append(f"Refusal decision: {', '.join(detectors)}.")
    extra = [_calibration(r) for r in records if r.check == "calibration"]
    extra += [_detectors(r) for r in records if r.check == "refusals"]
    extra += [_examples(r) for r in records if r.check in ("refusals", "agreement")]
    body = table + "\n\n" + "\n".join(notes) + "\n" + "\n".join(x for x in extra if x)
    return f"## Collateral\n\n{body}\n"

"""The sections of a suite's markdown report, each built from plain records (no I/O).

Every function returns the section's markdown (heading, table, notes) or "" when it has
nothing to show, so pages contain only sections with content.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from harness.fmt import (
    NA,
    fmt_float,
    fmt_int,
    fmt_interval,
    fmt_metric,
    fmt_p,
    fmt_percent,
    shorten,
)
from harness.metrics.registry import corpus_metric, paired_in
from harness.report.intervals import Interval
from harness.report.latency import latency_text
from harness.report.tables import markdown_table
from harness.report.verdicts import is_failing
from harness.results import ComparisonRecord, EvalResult, GateRecord, Problem
from harness.secrets import redact_value

SHORT = 12
PER_EXAMPLE_MARK = "†"


def _section(title: str, body: str, *notes: str, level: int = 2) -> str:
    tail = "".join(f"\n{note}\n" for note in notes if note)
    return f"{'#' * level} {title}\n\n{body}\n{tail}\n"


def metric_order(results: Sequence[EvalResult]) -> list[str]:
    """Metrics of ``results``: those with per-example scores first (in PAIRED_SCORE order), then the rest."""
    names = {m for r in results for m in r.metrics}
    paired = paired_in(names)
    return paired + sorted(names - set(paired))


def candidates_section(results: Sequence[EvalResult], intervals: Mapping[str, Mapping[str, Interval]], *,
                       level: int = 2) -> str:
    """Candidates × metrics, each paired metric with its bootstrap CI, plus the model fingerprint."""
    if not results:
        return ""
    metrics = metric_order(results)
    flagged = False
    rows = []
    for result in results:
        row = [result.candidate, result.kind, result.fingerprint[:SHORT], fmt_int(result.n)]
        for metric in metrics:
            value = result.metrics.get(metric)
            text = fmt_metric(value, metric) if value is not None else NA
            interval = intervals.get(result.candidate, {}).get(metric)
            if interval is not None:
                mark = "" if interval.of_aggregate else PER_EXAMPLE_MARK
                flagged = flagged or bool(mark)
                text += f" {fmt_interval((interval.low, interval.high), metric)}{mark}"
            row.append(text)
        rows.append(row)
    rows += reference_rows(results, metrics)
    note = ("Brackets: 95% percentile bootstrap CI (2,000 resamples, seed 0) of the mean per-example score"
            + _corpus_note(metrics))
    if any("degenerate" in r.details for r in results):
        note += (" *Reference* rows: accuracy without a model — always the eval set's majority label, always "
                 "the train split's majority label, and a uniform guess (1 / #labels).")
    if flagged:
        note += (f" {PER_EXAMPLE_MARK} the aggregate is corpus-level, so its interval is that of the "
                 "mean per-example (sentence) score.")
    return _section("Candidates", markdown_table(["candidate", "kind", "model", "n", *metrics], rows), note,
                    level=level)


def _corpus_note(metrics: Sequence[str]) -> str:
    """The interval note's clause for the corpus metrics among ``metrics`` ("" when none)."""
    labels = [corpus.label for corpus in map(corpus_metric, metrics) if corpus is not None]
    if not labels:
        return "."
    return f"; for {', '.join(labels)}, of the corpus score itself (per-example statistics resampled and re-added)."


def reference_rows(results: Sequence[EvalResult], metrics: Sequence[str]) -> list[list[str]]:
    """Candidates-table rows for the degenerate-model references of a classification suite."""
    checks = next((r.details["degenerate"] for r in results if r.details.get("degenerate")), None)
    if not checks or "accuracy" not in metrics:
        return []
    n = fmt_int(next(r.n for r in results if r.details.get("degenerate")))
    references = []
    if checks.get("majority_rate") is not None:
        references.append((f"majority class ({checks['majority_label']!r})", checks["majority_rate"]))
    if checks.get("train_majority_accuracy") is not None:
        references.append((f"train majority ({checks['train_majority_label']!r})", checks["train_majority_accuracy"]))
    if checks.get("chance") is not None:
        references.append((f"chance (1/{checks['n_labels']})", checks["chance"]))
    return [[f"*{name}*", "reference", NA, n,
             *[fmt_metric(value, m) if m == "accuracy" else NA for m in metrics]] for name, value in references]


def comparisons_section(comparisons: Sequence[ComparisonRecord]) -> str:
    """The A/B table: b against a per metric, improvement, CI, p-value, test and MDE."""
    if not comparisons:
        return ""
    rows = []
    for c in sorted(comparisons, key=lambda c: (c.metric, c.a, c.b)):
        r, m = c.result, c.metric
        p_value, alpha = r.get("p_value"), r.get("alpha", 0.05)
        significant = p_value is not None and not math.isnan(p_value) and p_value < alpha
        rows.append([m, c.a, c.b, fmt_metric(r.get("mean_a"), m), fmt_metric(r.get("mean_b"), m),
                     fmt_metric(r.get("difference"), m, signed=True),
                     fmt_percent(r.get("relative_improvement")), fmt_interval(r.get("ci"), m, signed=True),
                     fmt_p(p_value), r.get("alternative", ""), r.get("method", ""), fmt_metric(r.get("mde"), m),
                     "yes" if significant else "no", " / ".join(_flip_cells(r["flips"])) if r.get("flips") else NA])
    headers = ["metric", "A", "B", "mean A", "mean B", "B − A", "improvement", "95% CI", "p", "alternative",
               "test", "MDE", "significant", "flips A → B (− / + / churn / same)"]
    flags = sorted({f for c in comparisons for f in (c.flags or [])})
    legend = "MDE: the smallest difference this eval set detects with 80% power."
    for metric in sorted({c.metric for c in comparisons}):
        corpus = corpus_metric(metric)
        if corpus is not None:
            legend += (f" {metric} is tested at corpus level (paired bootstrap of {corpus.label}, as sacrebleu's "
                       "paired_bs).")
    return _section("A/B comparisons", markdown_table(headers, rows), legend, *[f"⚠ {flag}" for flag in flags])


def gate_section(gates: Sequence[GateRecord]) -> str:
    """Every gated metric's verdict against the baseline."""
    if not gates:
        return ""
    rows = []
    for g in gates:
        d, m = g.details, g.metric
        verdict = g.verdict + (" ✗" if is_failing(g) else "")
        rows.append([g.candidate, m, verdict, fmt_metric(g.baseline, m), fmt_metric(g.current, m),
                     fmt_metric(d.get("delta"), m, signed=True), fmt_interval(d.get("ci"), m, signed=True),
                     fmt_p(d.get("p_value")), d.get("method", ""), d.get("tolerance", ""),
                     fmt_metric(d.get("mde"), m),
                     "; ".join(filter(None, [_cluster_note(d), _drift_note(g) or d.get("reason")
                                             or d.get("pairing_note") or ""]))])
    headers = ["candidate", "metric", "verdict", "baseline", "current", "Δ (paired)", "CI", "p (Holm)",
               "test", "tolerance", "MDE", "note"]
    legend = "✗ fails the run. " if any(is_failing(g) for g in gates) else ""
    confidence = next((g.details["confidence"] for g in gates if g.details.get("confidence")), None)
    level = f"{confidence:.0%} CI (1 − 2α)" if confidence else "CI"
    return _section("Gate", markdown_table(headers, rows),
                    flips_table(gates),
                    f"{legend}Verdict: non-inferiority against the tolerance, read from the {level} of the paired "
                    "Δ: lower bound above −tolerance passes, upper bound below it regresses, an interval across it "
                    "is inconclusive. p: one-sided, Holm-adjusted across the candidate's gated metrics.")


def _cluster_note(details: Mapping[str, Any]) -> str:
    """``30 clusters, design effect 3.04`` (and the few-clusters warning) for a clustered suite's test."""
    clusters = details.get("n_clusters")
    if not clusters:
        return ""
    effect = details.get("design_effect")
    note = f"{clusters} clusters" + (f", design effect {effect:.3g}" if isinstance(effect, float)
                                     and math.isfinite(effect) else "")
    warning = details.get("cluster_warning")
    return note + (f" ⚠ {warning}" if warning else "")


def _drift_note(g: GateRecord) -> str:
    """``drift −0.050 since 2026-12-01 (max 0.030)`` when the ``max_drift`` check failed."""
    d = g.details.get("drift") or {}
    if not d.get("failed"):
        return ""
    return (f"drift {fmt_metric(d['change'], g.metric, signed=True)} since {str(d['oldest_date'])[:10]} "
            f"(max_drift {fmt_metric(d['max_drift'], g.metric)})")


def _flip_cells(flips: Mapping[str, Any]) -> list[str]:
    counts = flips.get("counts") or {}
    known = flips.get("outputs_compared", True)
    return [fmt_int(counts.get("harmful", 0)), fmt_int(counts.get("beneficial", 0)),
            fmt_int(counts.get("churn", 0)) if known else NA, fmt_int(counts.get("unchanged", 0))]


def flips_table(gates: Sequence[GateRecord]) -> str:
    """Per gated metric (and per slice) the examples that flipped against the baseline."""
    rows = []
    for g in gates:
        flips = g.details.get("flips")
        if not flips:
            continue
        rows.append([g.candidate, g.metric, "all", *_flip_cells(flips)])
        for family, groups in (flips.get("slices") or {}).items():
            rows += [[g.candidate, g.metric, f"{family}={name}", *_flip_cells({**flips, "counts": counts})]
                     for name, counts in groups.items()]
    if not rows:
        return ""
    unknown = any(not (g.details.get("flips") or {}).get("outputs_compared", True) for g in gates)
    note = ("Flips against the baseline, example by example: harmful = right → wrong (or a score drop beyond "
            "1 % of the metric's scale), beneficial = the reverse, churn = same score but a different output, "
            "unchanged = same score and output.")
    if unknown:
        note += f" {NA} churn: the baseline recorded no outputs (accept a new baseline to record them)."
    table = markdown_table(["candidate", "metric", "slice", "harmful", "beneficial", "churn", "unchanged"], rows)
    return f"### Flips\n\n{table}\n\n{note}"


def regressions_section(gates: Sequence[GateRecord]) -> str:
    """Each failing metric with the examples that got worse: expected and got side by side."""
    failing = [g for g in gates if is_failing(g)]
    if not failing:
        return ""
    blocks = []
    for g in failing:
        d, m = g.details, g.metric
        title = (f"### {g.candidate} · {m}: {g.verdict}, {fmt_metric(g.baseline, m)} → "
                 f"{fmt_metric(g.current, m)}")
        worse = d.get("worse") or []
        if not worse:
            blocks.append(f"{title}\n\n{d.get('reason') or g.message}\n")
            continue
        rows = [[w["id"], shorten(w["input"], 60), shorten(w["expected"], 60), shorten(w["got"], 60),
                 fmt_metric(w["baseline_score"], m), fmt_metric(w["current_score"], m)] for w in worse]
        table = markdown_table(["example", "input", "expected", "got", "baseline score", "score"], rows)
        blocks.append(f"{title}\n\n{d.get('n_worse', len(worse))} example(s) worse, {d.get('n_better', 0)} "
                      f"better; the worst {len(worse)}:\n\n{table}\n")
    return "## Regressions\n\n" + "\n".join(blocks) + "\n"


def _hyperparameters(hyperparameters: Mapping[str, Any], defaults: Mapping[str, Any]) -> str:
    """The hyperparameters a spec changed from the recipe's ``defaults`` (recorded by the training
    summary, so the report never imports a trainer); every one of them when none were recorded."""

    shown = {k: v for k, v in redact_value(dict(hyperparameters)).items()
             if k not in defaults or defaults[k] != v}
    text = ", ".join(f"{key}={value}" for key, value in sorted(shown.items()))
    return f"{text} (others default)" if defaults and text else (text or "defaults")


def _final_train_loss(training: Mapping[str, Any]) -> float | None:
    logged = [e["loss"] for e in training.get("log_history") or [] if isinstance(e.get("loss"), (int, float))]
    return float(logged[-1]) if logged else training.get("train_loss")


def training_section(results: Sequence[EvalResult]) -> str:
    """Hyperparameters, runtime, parameter counts, final losses and data losses of trained candidates."""
    trained = [r for r in results if r.training]
    if not trained:
        return ""
    rows = []
    for r in trained:
        t = r.training or {}
        params = f"{fmt_int(t.get('trainable_params'))} / {fmt_int(t.get('total_params'))}"
        rows.append([r.candidate, _hyperparameters(t.get("hyperparameters") or {}, t.get("defaults") or {}),
                     fmt_float(t.get("runtime_s"), 3),
                     params, fmt_float(_final_train_loss(t)), fmt_float(t.get("eval_loss")),
                     f"{fmt_int(t.get('rows_dropped', 0))} / {fmt_int(t.get('rows_truncated', 0))}",
                     "; ".join(str(n) for n in t.get("notes") or [])])
    headers = ["candidate", "hyperparameters", "runtime (s)", "trainable / total params", "final train loss",
               "validation loss", "rows dropped / truncated", "notes"]
    warnings = [_overfitting_warning(r.candidate, (r.training or {})["overfitting"])
                for r in trained if (r.training or {}).get("overfitting")]
    return _section("Training", markdown_table(headers, rows), *warnings)


def _overfitting_warning(candidate: str, info: Mapping[str, Any]) -> str:
    return (f"⚠ **overfitting** in `{candidate}`: validation loss turned upward at epoch "
            f"{fmt_float(info.get('turned_at_epoch'), 3)} (step {info.get('turned_at_step')}) while training loss "
            f"kept falling: best validation loss {fmt_float(info.get('best_eval_loss'))}, final "
            f"{fmt_float(info.get('final_eval_loss'))}. Fewer epochs, early stopping or more data would help.")


def search_section(results: Sequence[EvalResult], images: Mapping[str, str] | None = None) -> str:
    """Each hyperparameter search's trials, the selection rule and the chosen configuration."""
    parts = []
    for r in results:
        search = (r.training or {}).get("search")
        if not search:
            continue
        rows = [[str(t.get("trial")), ", ".join(f"{k}={v}" for k, v in sorted((t.get("params") or {}).items())),
                 fmt_float(t.get("score")), fmt_float(t.get("eval_loss")), fmt_float(t.get("train_loss")),
                 fmt_float(t.get("runtime_s"), 3), str(t.get("cache", NA)),
                 "⚠" if t.get("overfitting") else "", "**best**" if t.get("best") else ""]
                for t in search.get("trials", [])]
        headers = ["trial", "parameters", f"score ({search.get('select', 'eval_loss')})", "validation loss",
                   "train loss", "runtime (s)", "cache", "overfit", ""]
        best = ", ".join(f"{k}={v}" for k, v in sorted((search.get("best_params") or {}).items()))
        note = (f"{search.get('strategy', 'grid')} search over {', '.join(sorted(search.get('space', {})))} "
                f"({search.get('n_trials')} trials), best by {search.get('select', 'eval_loss')} "
                f"({search.get('mode', 'min')}) on the {search.get('selected_on', 'validation')} split: {best}. "
                f"The candidate `{r.candidate}` is that trial's model.")
        image = (images or {}).get(r.candidate)
        body = markdown_table(headers, rows) + (f"\n\n![{r.candidate} trials]({image})" if image else "")
        parts.append(_section(f"Search `{r.candidate}`", body, note, level=3))
    return f"## Hyperparameter search\n\n{''.join(parts)}" if parts else ""


def stability_section(results: Sequence[EvalResult]) -> str:
    """Repeated evaluations: each metric's spread over the runs, the within-item variance, items whose
    outputs differ, non-determinism, and which metrics the gate reads as per-item means."""
    repeated = [r for r in results if r.details.get("repeats")]
    if not repeated:
        return ""
    rows = []
    for r in repeated:
        info = r.details["repeats"]
        within = info.get("within_item_variance") or {}
        for metric, spread in sorted(info.get("metrics", {}).items()):
            variance = within.get(metric)
            rows.append([r.candidate, metric, fmt_int(info.get("n")), fmt_metric(spread["mean"], metric),
                         fmt_metric(spread["std"], metric), fmt_metric(spread["min"], metric),
                         fmt_metric(spread["max"], metric), NA if variance is None else f"{variance:.4g}",
                         fmt_int(info.get("n_differing")) if "n_differing" in info else NA,
                         "sampled" if info.get("sampled") else ("yes" if info.get("deterministic") else "**NO**")])
    notes = [f"⚠ {r.candidate}: {r.details['repeats']['note']}" for r in repeated if r.details["repeats"].get("note")]
    notes += [f"{r.candidate}: the gate reads each item's mean over {r.details['repeats']['n']} sampled runs for "
              f"{', '.join(r.details['repeats']['averaged'])}" for r in repeated if r.details["repeats"].get("averaged")]
    notes += [f"{r.candidate}: the gate reads the corpus score of all {r.details['repeats']['n']} sampled runs' outputs "
              f"(each item's statistics pooled) for {', '.join(r.details['repeats']['pooled'])}"
              for r in repeated if r.details["repeats"].get("pooled")]
    table = markdown_table(["candidate", "metric", "runs", "mean", "std", "min", "max", "within-item variance",
                            "items with differing outputs", "greedy deterministic"], rows)
    return _section("Stability", table, *notes)


def evaluation_notes_section(results: Sequence[EvalResult]) -> str:
    """How predictions were obtained and how many replies named no label."""
    rows = [[r.candidate, str(r.details.get("method", NA)), fmt_int(r.details.get("unparsed"))]
            for r in results if "unparsed" in r.details]
    if not rows or not any(r.details.get("unparsed") for r in results):
        return ""
    return _section("Label parsing", markdown_table(["candidate", "method", "replies naming no label"], rows),
                    "A reply that names no allowed label counts as wrong.")


def datasets_section(results: Sequence[EvalResult]) -> str:
    """The eval splits' content fingerprints and which candidates were scored on each."""
    splits: dict[tuple[str, str, int], list[str]] = {}
    for r in results:
        splits.setdefault((r.split, r.split_fingerprint, r.n), []).append(r.candidate)
    if not splits:
        return ""
    rows = [[split, fingerprint, fmt_int(n), ", ".join(sorted(names))]
            for (split, fingerprint, n), names in sorted(splits.items())]
    note = "" if len(splits) == 1 else "⚠ candidates were scored on different eval sets."
    return _section("Datasets", markdown_table(["split", "fingerprint", "examples", "candidates"], rows), note)


def problems_section(problems: Sequence[Problem]) -> str:
    """Failed tests, classified as regression, harness error, failed check or test error."""
    if not problems:
        return ""
    rows = [[p.category, p.nodeid, shorten(p.message, 160)] for p in sorted(problems, key=lambda p: p.nodeid)]
    return _section("Failures", markdown_table(["category", "test", "message"], rows))


def plots_section(images: Sequence[tuple[str, str]]) -> str:
    """Embedded PNGs, by path relative to the report."""
    if not images:
        return ""
    return _section("Plots", "\n\n".join(f"![{alt}]({path})" for alt, path in images))


def run_info_section(run_info: Mapping[str, Any], results: Sequence[EvalResult], *, date: str) -> str:
    """The only part that differs between runs: date, durations, cache hits, timings."""
    lines = [f"- date: {run_info.get('date', date)}"]
    for key in sorted(run_info):
        if key in ("date", "written", "notes"):
            continue
        value = run_info[key]
        if isinstance(value, Mapping):
            value = ", ".join(f"{k}={v}" for k, v in sorted(value.items())) or "none"
        lines.append(f"- {key}: {value}")
    for r in results:
        timings = ", ".join(f"{k}={fmt_float(v, 3)}" for k, v in sorted(r.timings.items()))
        cache = ", ".join(f"{k}={v}" for k, v in sorted(r.cache.items()))
        latency = latency_text(r.usage)
        if timings or cache or latency:
            shown = (timings, cache and f"cache {cache}", latency)
            lines.append(f"- {r.candidate}: {'; '.join(x for x in shown if x)}")
    return "## Run info\n\n" + "\n".join(lines) + "\n"

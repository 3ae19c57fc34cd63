"""Validate a dataset file: every error and warning, token statistics, epochs and cost.

Reproduces OpenAI's chat fine-tuning data checker (format errors, missing system / user
message, token distributions, examples over the context limit, default epochs and billed
tokens) on any supported format, and adds the harness's own checks (encoding, binary
data, empty file, empty reply, system position, duplicates, conflicting answers).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.data.findings import (
    DEFAULT_FINDINGS_CAP,
    ERROR,
    WARNING,
    Finding,
    render_findings,
)
from harness.data.fingerprint import fingerprint_examples, short_fingerprint
from harness.data.lint import describe_lines, find_conflicting_answers, find_duplicates
from harness.data.loading import examples_from_raw, split_name_for
from harness.data.reading import read_source
from harness.data.records import Example
from harness.data.tokens import (
    MAX_TOKENS_PER_EXAMPLE,
    TokenCounter,
    assistant_tokens,
    billing_tokens,
    default_epochs,
    distribution,
    make_counter,
)


@dataclass
class ValidationReport:
    """The outcome of validating one file (``ok`` when it has no errors)."""

    path: str
    n_examples: int
    findings: list[Finding]
    counts_exact: bool = False
    counter: str = ""
    stats: dict[str, dict[str, float]] = field(default_factory=dict)
    n_missing_system: int = 0
    n_missing_user: int = 0
    n_too_long: int = 0
    max_tokens: int = MAX_TOKENS_PER_EXAMPLE
    default_epochs: int | None = None
    billing_tokens: int | None = None
    fingerprint: str | None = None

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == WARNING]

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self, cap: int = DEFAULT_FINDINGS_CAP) -> dict[str, Any]:
        """JSON-ready summary (errors and warnings capped at ``cap`` each)."""
        return {
            "path": self.path, "ok": self.ok, "n_examples": self.n_examples,
            "n_errors": len(self.errors), "n_warnings": len(self.warnings),
            "errors": [f.as_dict() for f in self.errors[:cap]],
            "warnings": [f.as_dict() for f in self.warnings[:cap]],
            "token_counts": "exact" if self.counts_exact else "estimate",
            "token_counter": self.counter, "stats": self.stats,
            "n_missing_system": self.n_missing_system, "n_missing_user": self.n_missing_user,
            "n_too_long": self.n_too_long, "max_tokens": self.max_tokens,
            "default_epochs": self.default_epochs, "billing_tokens": self.billing_tokens,
            "fingerprint": self.fingerprint,
        }

    def render(self, cap: int = DEFAULT_FINDINGS_CAP) -> list[str]:
        """Readable lines: verdict, findings (capped), statistics."""
        verdict = "OK" if self.ok else "INVALID"
        lines = [f"{self.path}: {verdict}: {self.n_examples} valid examples, "
                 f"{len(self.errors)} errors, {len(self.warnings)} warnings"]
        lines += render_findings(self.errors, cap)
        lines += render_findings(self.warnings, cap)
        if self.stats:
            lines.append(f"tokens ({self.counter}):")  # "exact, NAME" or "estimated, ~4 chars/token"
            for name, dist in self.stats.items():
                lines.append(f"  {name}: min {dist['min']:g} / max {dist['max']:g}, mean "
                             f"{dist['mean']:.1f} / median {dist['median']:g}, p10 "
                             f"{dist['p10']:.1f} / p90 {dist['p90']:.1f}")
            approx = "" if self.counts_exact else "~"
            lines.append(f"  {self.n_too_long} examples over the {self.max_tokens:,}-token limit")
            lines.append(f"  billed tokens per epoch: {approx}{self.billing_tokens}; default "
                         f"epochs: {self.default_epochs}; billed in total: "
                         f"{approx}{(self.billing_tokens or 0) * (self.default_epochs or 0)}")
        if self.fingerprint:
            lines.append(f"  fingerprint: {short_fingerprint(self.fingerprint)}")
        return lines


def _aggregate(code: str, what: str, group: list[Example], total: int) -> Finding:
    first = group[0]
    return Finding(WARNING, code, f"{what} in {len(group)} of {total} examples ({describe_lines(group)})",
                   path=first.source, line=first.line, field="messages",
                   unit=first.meta.get("unit", "line"))


def example_warnings(examples: Sequence[Example], counter: TokenCounter,
                     max_tokens: int = MAX_TOKENS_PER_EXAMPLE
                     ) -> tuple[list[Finding], dict[str, Any]]:
    """The cookbook's warnings and token statistics for valid examples (pure)."""
    findings: list[Finding] = []
    no_system = [e for e in examples if not any(m.get("role") == "system" for m in e.messages)]
    no_user = [e for e in examples if not any(m.get("role") == "user" for m in e.messages)]
    if no_system:
        findings.append(_aggregate("missing_system", "no system message", no_system,
                                   len(examples)))
    if no_user:
        findings.append(_aggregate("missing_user", "no user message", no_user, len(examples)))
    conversation_lengths = [counter.conversation(e.messages) for e in examples]
    approx = "" if counter.exact else "~"
    for example, length in zip(examples, conversation_lengths, strict=True):
        if length > max_tokens:
            findings.append(Finding(
                WARNING, "too_long", f"{approx}{length} tokens, over the {max_tokens:,}-token "
                "limit; it will be truncated during fine-tuning", path=example.source,
                line=example.line, field="messages", unit=example.meta.get("unit", "line")))
    findings += find_duplicates(examples)
    findings += find_conflicting_answers(examples)
    facts: dict[str, Any] = {
        "n_missing_system": len(no_system), "n_missing_user": len(no_user),
        "n_too_long": sum(length > max_tokens for length in conversation_lengths),
    }
    if examples:
        facts["stats"] = {
            "num_messages_per_example": distribution([len(e.messages) for e in examples]),
            "num_total_tokens_per_example": distribution(conversation_lengths),
            "num_assistant_tokens_per_example": distribution(
                [assistant_tokens(e.messages, counter.count) for e in examples]),
        }
        facts["default_epochs"] = default_epochs(len(examples))
        facts["billing_tokens"] = billing_tokens(conversation_lengths, max_tokens)
    return findings, facts


def validate_file(path: str | Path, *, format: str | None = None, system: str | None = None,
                  count_tokens: Any = None, max_tokens: int = MAX_TOKENS_PER_EXAMPLE,
                  name: str | None = None) -> ValidationReport:
    """Validate ``path`` completely; never raises on bad data (problems are in the report).

    ``count_tokens`` is ``None`` (estimate), a Hugging Face tokenizer (exact) or a callable.
    """
    counter = make_counter(count_tokens)
    split_name = name or split_name_for(path)
    raw = read_source(path, split=name)
    try:
        examples, findings = examples_from_raw(raw, name=split_name, format=format,
                                               system=system)
    except ValueError as exc:  # unknown format name
        findings = [Finding(ERROR, "format", str(exc), path=raw.path, field="format")]
        examples = []
    warnings, facts = example_warnings(examples, counter, max_tokens)
    findings = sorted(findings + warnings, key=lambda f: (f.line is not None, f.line or 0))
    report = ValidationReport(path=raw.path, n_examples=len(examples), findings=findings,
                              counts_exact=counter.exact, counter=counter.description,
                              max_tokens=max_tokens, **facts)
    if report.ok:
        report.fingerprint = fingerprint_examples(examples)
    return report

"""Quality lint (pure): duplicates, conflicting answers, train/eval leakage, labels, lengths.

Every function takes examples and returns :class:`Finding` objects (warnings; ``strict``
turns them into errors) or plain tables. Texts are compared exactly and *normalised*
(Unicode NFKC, case-folded, runs of whitespace collapsed).
"""

from __future__ import annotations

import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from harness.data.findings import ERROR, WARNING, Finding
from harness.data.fingerprint import canonical_json, fingerprint_split
from harness.data.records import Example
from harness.data.slices import lint_slices
from harness.data.tokens import make_counter
from harness.data.truncation import count_truncation

CLASSIFICATION = "classification"
GENERATION = "generation"
COMPLEX = "complex"
TASKS = (CLASSIFICATION, GENERATION, COMPLEX)
#: Recommended example counts (low end, high end) by task, from the fine-tuning guide.
RECOMMENDED_EXAMPLES = {CLASSIFICATION: (50, 100), GENERATION: (100, 500), COMPLEX: (500, 1000)}
#: A label set is flagged as imbalanced when its most / least frequent count ratio reaches this.
IMBALANCE_RATIO = 5.0
MAX_LINES_SHOWN = 10


def normalise_text(text: str) -> str:
    """NFKC, case-folded, whitespace-collapsed text (what "normalised duplicate" compares)."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _conversation_key(messages: Sequence[dict], normalise: bool) -> str:
    if not normalise:
        return canonical_json(list(messages))
    return canonical_json([
        {"role": m.get("role"), "content": normalise_text(m["content"])
         if isinstance(m.get("content"), str) else m.get("content")} for m in messages])


def example_label(example: Example) -> str:
    """The example's class label: ``meta["label"]`` when present, else the reference reply."""
    return str(example.meta.get("label", example.reference))


def describe_lines(examples: Iterable[Example]) -> str:
    """"lines 3, 7, 9" (or "rows ..." for CSV / Parquet data), at most ten numbers shown."""
    examples = list(examples)
    numbers = [str(e.line) for e in examples]
    shown = ", ".join(numbers[:MAX_LINES_SHOWN])
    more = f" and {len(numbers) - MAX_LINES_SHOWN} more" if len(numbers) > MAX_LINES_SHOWN else ""
    unit = "rows" if any(e.meta.get("unit") == "row" for e in examples) else "lines"
    return f"{unit} {shown}{more}" if len(numbers) > 1 else f"{unit[:-1]} {shown}"


def _warning(code: str, message: str, example: Example | None = None, field_name: str | None
             = None, path: str = "") -> Finding:
    if example is None:
        return Finding(WARNING, code, message, path=path, field=field_name)
    return Finding(WARNING, code, message, path=example.source, line=example.line,
                   field=field_name, unit=example.meta.get("unit", "line"))


def find_duplicates(examples: Sequence[Example]) -> list[Finding]:
    """Exact and normalised duplicate conversations, each group named by all its lines."""
    findings: list[Finding] = []
    exact_keys = [_conversation_key(e.messages, normalise=False) for e in examples]
    exact: dict[str, list[Example]] = defaultdict(list)
    normalised: dict[str, list[tuple[Example, str]]] = defaultdict(list)
    for example, key in zip(examples, exact_keys, strict=True):
        exact[key].append(example)
        normalised[_conversation_key(example.messages, normalise=True)].append((example, key))
    for group in exact.values():
        if len(group) > 1:
            findings.append(_warning("duplicate", f"exact duplicate records on "
                                     f"{describe_lines(group)}", group[0], "messages"))
    for pairs in normalised.values():
        if len(pairs) > 1 and len({key for _, key in pairs}) > 1:
            group = [example for example, _ in pairs]
            findings.append(_warning(
                "near_duplicate", "duplicate records after normalising case and whitespace on "
                f"{describe_lines(group)}", group[0], "messages"))
    return findings


def find_conflicting_answers(examples: Sequence[Example]) -> list[Finding]:
    """The same (normalised) prompt with different (normalised) answers."""
    by_prompt: dict[str, list[Example]] = defaultdict(list)
    for example in examples:
        by_prompt[_conversation_key(example.prompt, normalise=True)].append(example)
    findings = []
    for group in by_prompt.values():
        answers = {normalise_text(e.reference) for e in group}
        if len(answers) > 1:
            shown = "; ".join(f"{e.line}: {e.reference[:40]!r}" for e in group[:MAX_LINES_SHOWN])
            findings.append(_warning(
                "conflicting_answers", f"same prompt with {len(answers)} different answers on "
                f"{describe_lines(group)} ({shown})", group[0], "messages"))
    return findings


def find_leakage(train: Sequence[Example], evaluation: Sequence[Example]) -> list[Finding]:
    """Eval examples whose (normalised) prompt also occurs in train, with lines on both sides."""
    by_prompt: dict[str, list[Example]] = defaultdict(list)
    for example in train:
        by_prompt[_conversation_key(example.prompt, normalise=True)].append(example)
    findings = []
    for example in evaluation:
        hits = by_prompt.get(_conversation_key(example.prompt, normalise=True))
        if hits:
            same = all(normalise_text(h.reference) == normalise_text(example.reference)
                       for h in hits)
            what = "example" if same else "prompt"
            findings.append(_warning(
                "leakage", f"eval {what} also in train ({hits[0].source} {describe_lines(hits)})",
                example, "messages"))
    return findings


def label_counts(examples: Sequence[Example]) -> Counter:
    """How many examples carry each label."""
    return Counter(example_label(e) for e in examples)


def label_table(train: Sequence[Example], evaluation: Sequence[Example] | None = None
                ) -> list[dict[str, Any]]:
    """Rows ``{label, train, train_share, eval, eval_share}`` sorted by train count."""
    train_counts = label_counts(train)
    eval_counts = label_counts(evaluation or [])
    labels = sorted(set(train_counts) | set(eval_counts), key=lambda k: (-train_counts[k], k))
    rows = []
    for label in labels:
        row: dict[str, Any] = {"label": label, "train": train_counts[label],
                               "train_share": train_counts[label] / max(1, len(train))}
        if evaluation is not None:
            row["eval"] = eval_counts[label]
            row["eval_share"] = eval_counts[label] / max(1, len(evaluation))
        rows.append(row)
    return rows


def find_label_problems(train: Sequence[Example], evaluation: Sequence[Example] | None = None,
                        ratio: float = IMBALANCE_RATIO) -> list[Finding]:
    """Imbalanced train labels and eval labels never seen in train."""
    findings = []
    counts = label_counts(train)
    path = train[0].source if train else ""
    if len(counts) == 1 and train:
        findings.append(_warning("single_label", f"every training example has the same label "
                                 f"{next(iter(counts))!r}", path=path, field_name="label"))
    elif counts:
        (top, top_n), (low, low_n) = counts.most_common()[0], counts.most_common()[-1]
        if top_n / low_n >= ratio:
            findings.append(_warning(
                "label_imbalance", f"labels are imbalanced: {top!r} has {top_n} examples, "
                f"{low!r} has {low_n} (ratio {top_n / low_n:.1f}, threshold {ratio:g})",
                path=path, field_name="label"))
    if evaluation:
        unseen: dict[str, list[Example]] = defaultdict(list)
        for example in evaluation:
            if example_label(example) not in counts:
                unseen[example_label(example)].append(example)
        for label, group in unseen.items():
            findings.append(_warning("unseen_label", f"eval label {label!r} never appears in "
                                     f"train ({describe_lines(group)})", group[0], "label"))
    return findings


def find_too_long(examples: Sequence[Example], lengths: Sequence[int], max_length: int,
                  exact: bool = True) -> list[Finding]:
    """Examples whose token ``lengths`` (one per example) exceed ``max_length``."""
    findings = []
    approx = "" if exact else "~"
    for example, n in zip(examples, lengths, strict=True):
        if n > max_length:
            findings.append(_warning(
                "too_long", f"{approx}{n} tokens, longer than the maximum length {max_length} "
                f"({'exact' if exact else 'estimate'}); it will be truncated", example,
                "messages"))
    return findings


def find_too_few(n_examples: int, task: str, path: str = "") -> list[Finding]:
    """Fewer training examples than the guide recommends for ``task``."""
    low, high = RECOMMENDED_EXAMPLES[task]
    if n_examples < low:
        return [_warning("too_few", f"{n_examples} training examples; at least {low}-{high} "
                         f"are recommended for {task} tasks", path=path)]
    return []


def find_inconsistent_system_prompts(examples: Sequence[Example],
                                     evaluation: Sequence[Example] | None = None
                                     ) -> list[Finding]:
    """Different system prompts (or some examples without one) across train and eval."""
    def system_of(example: Example) -> str | None:
        first = example.messages[0] if example.messages else {}
        return first.get("content") if first.get("role") == "system" else None

    findings = []
    groups: dict[str | None, list[Example]] = defaultdict(list)
    for example in examples:
        groups[system_of(example)].append(example)
    if len(groups) > 1:
        ordered = sorted(groups.items(), key=lambda kv: -len(kv[1]))
        common = ordered[0][0]
        for prompt, group in ordered[1:]:
            what = "no system prompt" if prompt is None else f"system prompt {prompt[:40]!r}"
            base = "none" if common is None else repr(common[:40])
            findings.append(_warning(
                "inconsistent_system_prompt", f"{what} on {describe_lines(group)}, while "
                f"{len(ordered[0][1])} examples use {base}", group[0], "messages[0]"))
    if evaluation:
        train_prompts = set(groups)
        eval_only: dict[str | None, list[Example]] = defaultdict(list)
        for example in evaluation:
            if system_of(example) not in train_prompts:
                eval_only[system_of(example)].append(example)
        for prompt, group in eval_only.items():
            what = "no system prompt" if prompt is None else f"system prompt {prompt[:40]!r}"
            findings.append(_warning("system_prompt_mismatch", f"eval uses {what}, never used "
                                     f"in train ({describe_lines(group)})", group[0], "messages[0]"))
    return findings


def as_errors(findings: Iterable[Finding]) -> list[Finding]:
    """The same findings with severity "error" (``--strict``)."""
    return [replace(f, severity=ERROR) for f in findings]


@dataclass
class LintReport:
    """Everything ``ft-harness data lint`` prints: counts, lengths, labels and findings."""

    train_path: str
    eval_path: str | None
    n_train: int
    n_eval: int
    task: str
    token_lengths: dict[str, dict[str, float]] = field(default_factory=dict)
    counts_exact: bool = False
    counter: str = ""
    labels: list[dict[str, Any]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    truncation: Any = None
    fingerprints: dict[str, str] = field(default_factory=dict)
    #: eval slice sizes (declared slices, else per metadata value): ``{"label: positive": 100, ...}``
    slices: dict[str, int] = field(default_factory=dict)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == WARNING]


def infer_task(examples: Sequence[Example]) -> str:
    """"classification" when every example carries a ``label``, else "generation"."""
    if examples and all("label" in e.meta for e in examples):
        return CLASSIFICATION
    return GENERATION


def length_percentiles(lengths: Sequence[int]) -> dict[str, float]:
    """Token length summary: min, p50, p90, p95, p99, max (numpy percentiles)."""
    import numpy as np

    if not lengths:
        return {}
    values = np.asarray(lengths, dtype=float)
    summary = {"min": float(values.min())}
    for q in (50, 90, 95, 99):
        summary[f"p{q}"] = float(np.percentile(values, q))
    summary["max"] = float(values.max())
    return summary


def lint_splits(train: Any, evaluation: Any = None, *, task: str | None = None,
                strict: bool = False, tokenizer: Any = None, max_length: int | None = None,
                count_tokens: Any = None, slices: Sequence[Any] = (), slice_labels: Sequence[str] = ()) -> LintReport:
    """Run every quality check on a train :class:`Split` (and optional eval split).

    Token lengths use ``tokenizer``'s chat template when given (exact), else
    ``count_tokens`` / the ~4-characters estimate. With a tokenizer and ``max_length``
    (default: the tokenizer's ``model_max_length`` when finite) the report also holds
    :func:`~harness.data.truncation.count_truncation`'s counts.
    """

    train_examples = list(train.examples)
    eval_examples = list(evaluation.examples) if evaluation is not None else None
    task = task or infer_task(train_examples)
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r} (expected one of {', '.join(TASKS)})")
    counter = make_counter(tokenizer if tokenizer is not None else count_tokens)
    if max_length is None and tokenizer is not None:
        model_max = getattr(tokenizer, "model_max_length", None)
        max_length = int(model_max) if model_max and model_max < 1_000_000 else None

    findings = find_duplicates(train_examples) + find_conflicting_answers(train_examples)
    findings += find_too_few(len(train_examples), task, train.path)
    findings += find_inconsistent_system_prompts(train_examples, eval_examples)
    if eval_examples is not None:
        findings += find_duplicates(eval_examples)
        findings += find_leakage(train_examples, eval_examples)
    labels: list[dict[str, Any]] = []
    if task == CLASSIFICATION:
        labels = label_table(train_examples, eval_examples)
        findings += find_label_problems(train_examples, eval_examples)
    lengths = {"train": [counter.conversation(e.messages) for e in train_examples]}
    if eval_examples is not None:
        lengths["eval"] = [counter.conversation(e.messages) for e in eval_examples]
    truncation = None
    if max_length is not None:
        findings += find_too_long(train_examples, lengths["train"], max_length, counter.exact)
        if eval_examples is not None:
            findings += find_too_long(eval_examples, lengths["eval"], max_length, counter.exact)
        if tokenizer is not None:

            truncation = count_truncation(train_examples, tokenizer, max_length)

    sliced = eval_examples if eval_examples is not None else train_examples
    slice_sizes, slice_findings = lint_slices(sliced, "eval" if eval_examples is not None else "train",
                                              declared=slices, labels=slice_labels,
                                              count_tokens=counter.count)
    findings += slice_findings
    if strict:
        findings = as_errors(findings)
    fingerprints = {"train": fingerprint_split(train)}
    if evaluation is not None:
        fingerprints["eval"] = fingerprint_split(evaluation)
    return LintReport(
        train_path=train.path, eval_path=evaluation.path if evaluation is not None else None,
        n_train=len(train_examples), n_eval=len(eval_examples or []), task=task,
        token_lengths={k: length_percentiles(v) for k, v in lengths.items()},
        counts_exact=counter.exact, counter=counter.description, labels=labels,
        findings=findings, truncation=truncation, fingerprints=fingerprints, slices=slice_sizes)

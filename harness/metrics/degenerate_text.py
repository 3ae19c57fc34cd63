"""Degenerate-generation checks (pure): does a generation candidate answer its inputs at all?

ROUGE and BLEU reward template words: a model that writes the same sentence for every product can
beat the base "significantly" while naming no product. Next to every generation result these
numbers, each set against the same number for the references (what the task itself looks like):

* ``distinct_outputs`` / ``distinct_share``: distinct replies (case and whitespace folded) over n;
* ``top_output_share``: the most frequent reply's share, and the reply itself;
* ``shared_output_share``: replies identical to the reply of an example with a different input;
* ``empty_share`` / ``truncated_share``: empty replies, replies that stopped at ``max_new_tokens``;
* ``input_use`` and ``input_use_baseline``: how much of the words specific to each input (words
  in at most half of the eval inputs, so the instruction and field names drop out) the reply
  repeats, against the same for a reply compared with the *other* inputs. The baseline is exact:
  the mean over every other input, computed from word weights in one pass. A reply that ignores
  its input scores the same against its own input as against any other; ``input_lift`` (own minus
  baseline) is then about zero, whatever template words it shares with the references. It needs
  no reference, so it judges the base, a prompt and a fine-tune alike, and it is general: it reads
  only words, not fields of a known format.

Flags (each with its numbers) are raised when the candidate falls far from the references:
fewer than half as many distinct replies; one reply for at least 20 % of examples and at least
twice the references' top share; at least half the replies shared across different inputs where
references share at most a quarter; 10 % or more empty replies; half or more cut at
``max_new_tokens``; an input lift under a quarter of the references' where the references use
their input (lift ≥ 0.05).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

_WORD = re.compile(r"\w+", re.UNICODE)
#: a word in more than this share of the eval inputs is template, not input-specific
SPECIFIC_DF = 0.5
DISTINCT_RATIO = 0.5   # flag below half the references' distinct replies
TOP_SHARE = 0.2        # ... a reply given for this share of examples and twice the references' top share
SHARED_SHARE = 0.5     # ... this share of replies also given to a different input (references ≤ a quarter)
EMPTY_SHARE = 0.1
TRUNCATED_SHARE = 0.5
LIFT_RATIO = 0.25      # ... input lift under a quarter of the references' lift
MIN_REFERENCE_LIFT = 0.05
MIN_EXAMPLES = 10


def _fold(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _words(text: str) -> set[str]:
    return set(_WORD.findall(_fold(text)))


def _shape(replies: Sequence[str], inputs: Sequence[str]) -> dict[str, Any]:
    folded = [_fold(r) for r in replies]
    n = len(folded)
    counts = Counter(folded)
    top, top_count = counts.most_common(1)[0] if counts else ("", 0)
    inputs_by_reply: dict[str, set[str]] = defaultdict(set)
    for reply, text in zip(folded, inputs, strict=True):
        inputs_by_reply[reply].add(text)
    shared = sum(1 for reply in folded if len(inputs_by_reply[reply]) > 1)
    return {"distinct_outputs": len(counts), "distinct_share": len(counts) / n if n else 0.0,
            "top_output": top, "top_output_count": top_count, "top_output_share": top_count / n if n else 0.0,
            "shared_output_share": shared / n if n else 0.0,
            "empty_share": sum(1 for r in folded if not r) / n if n else 0.0}


def input_use(replies: Sequence[str], inputs: Sequence[str]) -> tuple[float, float]:
    """Mean share of each input's specific words the reply repeats, and the same against every
    other input (the reference-free baseline of a reply that ignores its input)."""
    n = len(inputs)
    if n < 2:
        return 0.0, 0.0
    word_sets = [_words(text) for text in inputs]
    df = Counter(word for words in word_sets for word in words)
    specific = [{w for w in words if df[w] <= SPECIFIC_DF * n} for words in word_sets]
    weight: dict[str, float] = defaultdict(float)  # sum over inputs of [word in S_j] / |S_j|
    for words in specific:
        for word in words:
            weight[word] += 1 / len(words)
    own_total = other_total = 0.0
    counted = 0
    for reply, words in zip(replies, specific, strict=True):
        if not words:
            continue
        said = _words(reply)
        own = len(said & words) / len(words)
        everywhere = sum(weight[w] for w in said if w in weight)
        own_total += own
        other_total += (everywhere - own) / (n - 1)
        counted += 1
    if not counted:
        return 0.0, 0.0
    return own_total / counted, other_total / counted


def generation_checks(predictions: Sequence[str], references: Sequence[str], inputs: Sequence[str], *,
                      completion_tokens: Sequence[int] | None = None, max_new_tokens: int | None = None
                      ) -> dict[str, Any]:
    """The candidate's and the references' numbers, and the flags (see the module docstring)."""
    mine, theirs = _shape(predictions, inputs), _shape(references, inputs)
    own, baseline = input_use(predictions, inputs)
    ref_own, ref_baseline = input_use(references, inputs)
    n = len(predictions)
    truncated = (sum(1 for t in completion_tokens if t >= max_new_tokens) / n
                 if completion_tokens and max_new_tokens and n else 0.0)
    checks: dict[str, Any] = {
        **mine, "truncated_share": truncated, "input_use": own, "input_use_baseline": baseline,
        "input_lift": own - baseline,
        "reference": {**{k: theirs[k] for k in ("distinct_outputs", "distinct_share", "top_output_share",
                                                "shared_output_share")},
                      "input_use": ref_own, "input_use_baseline": ref_baseline, "input_lift": ref_own - ref_baseline},
    }
    checks["flags"] = _flags(checks, n) if n >= MIN_EXAMPLES else []
    return checks


def _flags(c: dict[str, Any], n: int) -> list[str]:
    ref = c["reference"]
    flags = []
    if c["distinct_outputs"] < DISTINCT_RATIO * ref["distinct_outputs"]:
        flags.append(f"degenerate generation: {c['distinct_outputs']} distinct outputs for {n} inputs "
                     f"(references: {ref['distinct_outputs']}); the most frequent {c['top_output_count']} times "
                     f"({c['top_output_share']:.0%}): {c['top_output'][:60]!r}")
    elif c["top_output_share"] >= TOP_SHARE and c["top_output_share"] >= 2 * ref["top_output_share"]:
        flags.append(f"degenerate generation: one output for {c['top_output_share']:.0%} of inputs "
                     f"(references: {ref['top_output_share']:.0%}): {c['top_output'][:60]!r}")
    elif c["shared_output_share"] >= SHARED_SHARE and ref["shared_output_share"] <= SHARED_SHARE / 2:
        flags.append(f"degenerate generation: {c['shared_output_share']:.0%} of outputs are the same for "
                     f"different inputs (references: {ref['shared_output_share']:.0%})")
    if c["empty_share"] >= EMPTY_SHARE:
        flags.append(f"empty replies: {c['empty_share']:.0%} of outputs are empty")
    if c["truncated_share"] >= TRUNCATED_SHARE:
        flags.append(f"truncated replies: {c['truncated_share']:.0%} of outputs stop at max_new_tokens")
    if ref["input_lift"] >= MIN_REFERENCE_LIFT and c["input_lift"] < LIFT_RATIO * ref["input_lift"]:
        flags.append(f"ignores its input: repeats {c['input_use']:.0%} of each input's own words vs "
                     f"{c['input_use_baseline']:.0%} of other inputs' (references: {ref['input_use']:.0%} vs "
                     f"{ref['input_use_baseline']:.0%})")
    return flags

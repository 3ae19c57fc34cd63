"""``## Sample outputs``: the same k seeded eval examples for every candidate, under every verdict.

A score says how much; a few outputs say what. The examples are drawn with a fixed seed from the
ids every candidate answered, so reruns and candidates show the same rows; each shows the input,
the reference, the base's output and every other candidate's output beside it.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from harness.fmt import shorten
from harness.report.tables import markdown_table
from harness.results import EvalResult

SAMPLES = 3
SEED = 0
WIDTH = 160  # characters of each cell


def sample_ids(results: Sequence[EvalResult], k: int = SAMPLES, seed: int = SEED) -> list[str]:
    """``k`` ids answered by every candidate, drawn with ``seed`` and kept in eval order."""
    if not results:
        return []
    common = set(results[0].example_ids).intersection(*(r.example_ids for r in results[1:]))
    ordered = [i for i in results[0].example_ids if i in common]
    chosen = set(random.Random(seed).sample(ordered, min(k, len(ordered))))
    return [i for i in ordered if i in chosen]


def _cell(text: str) -> str:
    return shorten(text, WIDTH) or "(empty)"


def samples_section(results: Sequence[EvalResult], k: int = SAMPLES, seed: int = SEED) -> str:
    """Per sampled example: input and reference, then the base's output and each candidate's ("" without results)."""
    ordered = sorted(results, key=lambda r: (r.kind != "base", r.candidate))
    ids = sample_ids(ordered, k, seed)
    if not ids:
        return ""
    blocks = []
    for example_id in ids:
        first = ordered[0]
        i = first.example_ids.index(example_id)
        rows = [["*input*", _cell(first.inputs[i])], ["*reference*", _cell(first.references[i])]]
        for r in ordered:
            rows.append([f"{r.candidate} ({r.kind})", _cell(r.predictions[r.example_ids.index(example_id)])])
        blocks.append(f"### {example_id}\n\n{markdown_table(['', 'text'], rows)}\n")
    note = (f"{len(ids)} eval examples drawn with seed {seed} from the ids every candidate answered, the same for "
            "every candidate and every run; all outputs are in `outputs/<suite>/<candidate>.jsonl`.")
    return "## Sample outputs\n\n" + "\n".join(blocks) + f"\n{note}\n\n"

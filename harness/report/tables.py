"""Markdown tables through tabulate ("github" format) with cells that cannot break a row."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def cell(value: Any) -> str:
    """A table cell: one line, pipes escaped (a raw ``|`` or newline would split the row)."""
    text = " ".join(str(value).split()) if value is not None else ""
    return text.replace("|", "\\|")


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured markdown table; cells are used as given (numbers are pre-formatted)."""
    from tabulate import tabulate

    width = len(headers)
    for index, row in enumerate(rows):
        if len(row) != width:
            raise ValueError(f"table row {index} has {len(row)} cells, the header has {width}")
    return tabulate([[cell(v) for v in row] for row in rows], headers=[cell(h) for h in headers],
                    tablefmt="github", disable_numparse=True)

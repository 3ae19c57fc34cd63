"""``reports/results.json``: the whole run for machines (and for ``ft-harness baseline accept``).

Layout, version :data:`SCHEMA_VERSION`::

    {
      "schema_version": 1,
      "state": {                      # harness.results.RunState.as_dict()
        "results":     [EvalResult.as_dict(), ...],      # every score, per example
        "comparisons": [ComparisonRecord.as_dict(), ...],
        "gates":       [GateRecord.as_dict(), ...],
        "problems":    [Problem.as_dict(), ...],
        "run_info":    {...}          # dates, durations, cache hits: differs run to run
      }
    }

Non-finite numbers (NaN, ±inf) are written as ``null`` so any JSON parser reads the file.
:func:`read_results` turns the file back into a ``RunState``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.jsonio import strict_dumps, write_atomic
from harness.results import RunState

SCHEMA_VERSION = 1
STATE_KEY = "state"


def results_document(state: RunState) -> dict[str, Any]:
    """The JSON document for ``state`` (plain, finite values)."""
    plain = json.loads(strict_dumps(state.as_dict(), default=str))
    return {"schema_version": SCHEMA_VERSION, STATE_KEY: plain}


def write_results_json(state: RunState, path: Path) -> Path:
    """Write ``results.json`` atomically; returns its path."""

    text = strict_dumps(results_document(state), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    write_atomic(path, text)
    return path


def read_results(path: str | Path) -> RunState:
    """The ``RunState`` stored in a ``results.json``; errors name the file, line and field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise HarnessError(f"{path}: no results file; run `pytest suites/` first (it writes "
                           "reports/results.json)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise HarnessError(f"{path}: cannot read the results: {exc}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise HarnessError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from None
    from harness.gate.store import line_of_key

    if not isinstance(document, dict) or not isinstance(document.get(STATE_KEY), dict):
        raise HarnessError(f"{path}:{line_of_key(text, [STATE_KEY])}: field {STATE_KEY!r}: expected an "
                           "object holding the run's results (is this a results.json written by ft-harness?)")
    version = document.get("schema_version")
    if version != SCHEMA_VERSION:
        raise HarnessError(f"{path}:{line_of_key(text, ['schema_version'])}: field 'schema_version': "
                           f"expected {SCHEMA_VERSION}, got {version!r}")
    try:
        return RunState.from_dict(document[STATE_KEY])
    except (TypeError, KeyError, AttributeError) as exc:
        raise HarnessError(f"{path}: field {STATE_KEY!r}: malformed run state: {exc}") from None

"""``reports/results.json``: the whole run for machines (and for ``ft-harness baseline accept``).

Layout, version :data:`SCHEMA_VERSION`::

    {
      "schema_version": 1,
      "state": {                      # harness.results.RunState.as_dict()
        "results":     [EvalResult.as_dict(), ...],      # every score, per example
        "comparisons": [ComparisonRecord.as_dict(), ...],
        "gates":       [GateRecord.as_dict(), ...],
        "problems":    [Problem.as_dict(), ...],
        "collateral":  [CollateralRecord.as_dict(), ...],   # checks paired against each suite's reference
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
from harness.gate.store import line_of_key
from harness.jsonio import strict_dumps, write_atomic
from harness.results import ComparisonRecord, EvalResult, GateRecord, Problem, RunState

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

    if not isinstance(document, dict) or not isinstance(document.get(STATE_KEY), dict):
        raise HarnessError(f"{path}:{line_of_key(text, [STATE_KEY])}: field {STATE_KEY!r}: expected an "
                           "object holding the run's results (is this a results.json written by ft-harness?)")
    version = document.get("schema_version")
    if version != SCHEMA_VERSION:
        raise HarnessError(f"{path}:{line_of_key(text, ['schema_version'])}: field 'schema_version': "
                           f"expected {SCHEMA_VERSION}, got {version!r}")
    problem = state_shape_problem(document[STATE_KEY])
    if problem is not None:
        keys, message = problem
        raise HarnessError(f"{path}:{line_of_key(text, [STATE_KEY, *keys[:1]])}: field "
                           f"'{'.'.join([STATE_KEY, *keys])}': {message}")
    try:
        return RunState.from_dict(document[STATE_KEY])
    except (TypeError, KeyError, AttributeError, ValueError) as exc:
        raise HarnessError(f"{path}: field {STATE_KEY!r}: malformed run state: {exc}") from None


_RECORDS = {"results": EvalResult, "comparisons": ComparisonRecord, "gates": GateRecord, "problems": Problem}
_TABLES = ("run_info", "settings", "decisions")


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)


def _value_problem(annotation: str, value: Any) -> str | None:
    """Why ``value`` does not have the shape its dataclass annotation (a string) says, or None."""
    optional = annotation.endswith("| None")
    annotation = annotation.removesuffix("| None").strip()
    if value is None:
        return None if optional or annotation in ("float", "Any") else "expected a value, got null"
    if annotation.startswith("dict"):
        if not isinstance(value, dict):
            return f"expected an object, got {_kind(value)}"
        inner = annotation[annotation.find(",") + 1:-1].strip()
        for key, item in value.items():
            problem = _value_problem(inner, item)
            if problem is not None:
                return f"at {key!r}: {problem}"
        return None
    if annotation.startswith("list"):
        if not isinstance(value, list):
            return f"expected a list, got {_kind(value)}"
        inner = annotation[5:-1]
        for index, item in enumerate(value):
            problem = _value_problem(inner, item)
            if problem is not None:
                return f"at [{index}]: {problem}"
        return None
    expected = {"str": (str,), "float": (int, float), "int": (int,)}.get(annotation)
    if expected is not None and (isinstance(value, bool) or not isinstance(value, expected)):
        return f"expected {'a string' if annotation == 'str' else 'a number'}, got {_kind(value)}"
    return None


def state_shape_problem(state: dict[str, Any]) -> tuple[list[str], str] | None:
    """``(key path, problem)`` for the first field of a stored run state whose shape is wrong."""
    import dataclasses

    for name, kind in _RECORDS.items():
        records = state.get(name, [])
        if not isinstance(records, list):
            return [name], f"expected a list of records, got {_kind(records)}"
        known = {f.name: f for f in dataclasses.fields(kind)}
        for index, record in enumerate(records):
            where = [f"{name}[{index}]"]
            if not isinstance(record, dict):
                return where, f"expected an object, got {_kind(record)}"
            for key, value in record.items():
                if key not in known:
                    return [*where, key], f"unknown field (known: {', '.join(known)})"
                problem = _value_problem(str(known[key].type), value)
                if problem is not None:
                    return [*where, key], problem
            missing = [f.name for f in known.values() if f.name not in record
                       and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
            if missing:
                return where, f"missing field(s) {', '.join(missing)}"
    for name in _TABLES:
        if state.get(name) is not None and not isinstance(state[name], dict):
            return [name], f"expected an object, got {_kind(state[name])}"
    return None

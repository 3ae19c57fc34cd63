"""Structured-output checks: strict JSON validity and, optionally, a JSON-schema match.

Parsing is strict JSON (RFC 8259): Python's ``json`` extensions ``NaN``, ``Infinity`` and
``-Infinity`` are rejected. Schemas are validated with ``jsonschema`` using the validator
for the schema's ``$schema`` dialect (Draft 2020-12 when it names none).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from harness.metrics._common import check_not_empty, check_strings, library_version, yes_no
from harness.metrics.per_example import PerExampleResult

_CODE_FENCE = re.compile(r"\A\s*```[A-Za-z0-9_-]*[ \t]*\n(?P<body>.*?)\n?```\s*\Z", re.DOTALL)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _parse(text: str, *, strip_code_fence: bool) -> tuple[bool, Any, str]:
    if strip_code_fence:
        fenced = _CODE_FENCE.match(text)
        if fenced:
            text = fenced.group("body")
    try:
        return True, json.loads(text, parse_constant=_reject_constant), ""
    except json.JSONDecodeError as error:
        return False, None, f"invalid JSON: {error.msg} at line {error.lineno} column {error.colno}"
    except ValueError as error:
        return False, None, f"invalid JSON: {error}"


def _validator(schema: Mapping[str, Any]):
    import jsonschema

    if not isinstance(schema, Mapping):
        raise ValueError(f"schema must be a JSON object (a mapping), got {type(schema).__name__}")
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as error:
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        raise ValueError(f"invalid JSON schema at {where}: {error.message}") from None
    return cls(schema)


def json_valid(predictions: Sequence[str], *, schema: Mapping[str, Any] | None = None,
               strip_code_fence: bool = False) -> PerExampleResult:
    """1 where the prediction is strict JSON (and matches ``schema`` when given), else 0.

    ``strip_code_fence`` accepts a prediction wrapped in one Markdown code fence
    (```` ```json ... ``` ````) and checks its body.
    """
    hypotheses = check_strings(predictions, "predictions")
    check_not_empty(hypotheses, "predictions")
    from jsonschema.exceptions import best_match

    validator = None if schema is None else _validator(schema)
    scores: list[int] = []
    details: list[str] = []
    for text in hypotheses:
        ok, value, reason = _parse(text, strip_code_fence=strip_code_fence)
        if ok and validator is not None:
            error = best_match(validator.iter_errors(value))
            if error is not None:
                ok, reason = False, f"schema mismatch at {error.json_path}: {error.message}"
        scores.append(int(ok))
        details.append(reason)
    name = "json_schema_match" if schema is not None else "json_valid"
    signature = f"{name}|strict:yes|fence:{yes_no(strip_code_fence)}"
    if validator is not None:
        signature += (f"|dialect:{type(validator).__name__}"
                      f"|jsonschema:{library_version('jsonschema')}")
    return PerExampleResult(name=name, scores=scores, details=details, signature=signature)


def json_schema_match(predictions: Sequence[str], schema: Mapping[str, Any], *,
                      strip_code_fence: bool = False) -> PerExampleResult:
    """1 where the prediction is strict JSON that validates against ``schema``, else 0."""
    return json_valid(predictions, schema=schema, strip_code_fence=strip_code_fence)

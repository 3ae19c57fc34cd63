"""Candidate tables of the spec, checked when the spec loads: the kind, the keys each kind takes,
the types of their values, and the trainer's parameter names (and values) for trained kinds.

The kinds, their keys and their trainers' parameters are declared by the families that build
them (:mod:`harness.spec.registry`, filled by :mod:`harness.kinds`), so a typo in ``params``
fails at load, not after another candidate has trained for minutes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.errors import SpecError
from harness.protocol import MAX_COUNT, MAX_TRIALS
from harness.spec.model import CandidateSpec
from harness.spec.registry import KINDS, OPTION_CHECKS, ParamProblem, kind_facts, param_names
from harness.spec.table import Table, show, unknown_key

# The type of every option value, checked at load (the builders check what depends on files).
_STR, _INT, _POS, _NUM, _BOOL, _TABLE = "str", "int", "pos", "num", "bool", "table"
OPTION_TYPES = {
    "seed": _INT, "training_seed": _INT, "trials": _POS, "concurrency": _POS, "max_attempts": _POS,
    "max_length": _POS, "timeout_s": _NUM, "poll_interval_s": _NUM, "job_timeout_s": _NUM, "max_cost": _NUM,
    "load_in_8bit": _BOOL, "load_in_4bit": _BOOL, "verify": _BOOL,
    "label_descriptions": _TABLE, "request_options": _TABLE, "grid": _TABLE, "random": _TABLE,
    "shots": "count", "stratify": _BOOL, "scoring": "scoring", "engine": "registered", "vllm": "registered",
}
SCORING_METHODS = ("generate", "likelihood")


def _check_option(t: Table, key: str) -> None:
    expected = OPTION_TYPES.get(key, _STR)
    if expected == _STR:
        t.string(key)
    elif expected == _INT:
        t.seed(key)
    elif expected == "count":
        t.integer(key, 0, minimum=0)
    elif expected == "scoring":
        t.string(key, choices=SCORING_METHODS)
    elif expected == "registered":
        check = OPTION_CHECKS.get(key)
        if check is None:
            raise SpecError(f"{t.at(key)}: no installed family checks {key!r} (is its backend importable?)")
        check(t.get(key), t.at(key))
    elif expected == _POS:
        t.integer(key, 1, minimum=1, maximum=MAX_TRIALS if key == "trials" else MAX_COUNT)
    elif expected == _NUM:
        t.number(key, 0.0, minimum=0.0)
    elif expected == _BOOL:
        t.boolean(key, False)
    else:
        t.table(key)


def _check_params(kind: str, params: Table, options: Mapping[str, Any], has_validation: bool) -> None:
    facts = kind_facts(kind)
    if facts.params_check is not None:
        facts.params_check(dict(params.data), dict(options), params.where.removesuffix(".params"), has_validation)
        return
    if facts.params is None:
        if params.data:
            raise SpecError(f"{params.where}: kind {kind!r} ({facts.summary}) trains nothing and takes no params")
        return
    known = param_names(kind)
    for key in params:
        if key not in known:
            raise unknown_key(params.where, key, known)
    if facts.check_params is None:
        return
    try:
        merged = facts.check_params(dict(params.data))
        if facts.check_schedule is not None and isinstance(merged, Mapping):
            facts.check_schedule(merged, has_eval=has_validation, checkpointing=True)
    except ParamProblem as exc:
        raise exc.located(params.where.removesuffix(".params")) from None
    except SpecError as exc:
        raise SpecError(f"{params.where}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise SpecError(f"{params.where}: {exc}") from None


def check_candidate(name: str, value: Any, where: str, *, has_validation: bool = False) -> CandidateSpec:
    """A checked candidate table: known kind, known keys of the right types, known parameters."""
    if not isinstance(value, dict):
        raise SpecError(f"{where}: expected a table with at least `kind = \"...\"`, got {show(value)}")
    t = Table(value, where)
    kind = t.string("kind", required=True)
    if kind not in KINDS:
        known = ", ".join(KINDS) or "none registered: import harness.kinds, which registers the built-in families"
        raise SpecError(f"{t.at('kind')}: unknown kind {kind!r} (known: {known})")
    facts = kind_facts(kind)
    own = facts.options
    if facts.wraps:
        base_kind = t.string("base_kind", required=True, choices=facts.wraps)
        inner = kind_facts(base_kind)
        own = (*own, *(k for k in inner.options if k not in own))
        for key in inner.required:
            if key not in t:
                raise SpecError(f"{t.at(key)}: missing key {key!r} (base_kind {base_kind!r}: {inner.summary})")
    allowed = ("kind", "params", *own)
    for key in t:
        if key not in allowed:
            raise unknown_key(where, key, allowed)
    for key in own:
        if key in t:
            _check_option(t, key)
        elif key in facts.required:
            raise SpecError(f"{t.at(key)}: missing key {key!r} (kind {kind!r}: {facts.summary})")
    if "vllm" in t and t.get("engine") != "vllm":  # accepted and ignored is refused
        raise SpecError(f"{t.at('vllm')}: a vllm table is used only with engine = \"vllm\" (set it on this "
                        "candidate or its suite, or remove the table)")
    params = t.table("params") or Table({}, t.at("params"))
    options = {k: v for k, v in value.items() if k not in ("kind", "params")}
    _check_params(kind, params, options, has_validation)
    return CandidateSpec(name=name, kind=kind, params=dict(params.data), options=options)


def check_suite_candidates(suite: Any, where: str) -> None:
    """Checks that need the whole suite (its task, labels, splits): per-candidate ``scoring`` and each
    kind's ``suite_check``; ``where`` is the key path of the suite's candidates table."""
    for name, spec in suite.candidates.items():
        at = f"{where}.{name}"
        scoring = spec.options.get("scoring")
        if scoring == "likelihood" and suite.task != "classification":
            raise SpecError(f"{at}.scoring: 'likelihood' scoring needs a classification suite (task is {suite.task!r})")
        check = kind_facts(spec.kind).suite_check
        if check is not None:
            check(suite, spec, at)

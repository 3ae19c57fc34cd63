"""The registry of candidate kinds: each model family registers its kinds here, next to their builders.

A family declares one :class:`KindFacts` per kind (its builder, the option keys its table takes,
the trainer's parameter defaults and value check) and passes it to :func:`register_kind` when its
``kinds`` module is imported. The spec checks candidate tables against this registry without
naming any module above it; :mod:`harness.kinds` is the one place that imports the built-in
families, and third-party families register through the ``harness.kinds`` entry point group
(:func:`discover_entry_points`). Option checks that belong to a family (``engine``, ``vllm``) and
``[harness]`` sections it owns (``tiny``) register the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from harness.errors import SpecError

#: The entry point group third-party families register their kinds under.
ENTRY_POINT_GROUP = "harness.kinds"

Builder = Callable[[Any, Any, Any], Any]  # (BuildContext, SuiteSpec, CandidateSpec) -> Candidate


@dataclass(frozen=True)
class KindFacts:
    """What one candidate kind is built by and which keys its table takes."""

    name: str
    builder: Builder
    options: tuple[str, ...] = ()            # keys besides ``kind`` and ``params``
    params: Collection[str] | None = None    # the trainer's parameter names (its defaults); None: no params
    check_params: Callable[[Mapping[str, Any]], Any] | None = None  # value check of the merged params
    summary: str = ""
    required: tuple[str, ...] = ()           # options the kind cannot do without
    check_schedule: Callable[..., Any] | None = None  # (merged params, has_eval=, checkpointing=) check
    wraps: tuple[str, ...] = ()              # kinds ``base_kind`` may name; their options are taken too
    suite_check: Callable[[Any, Any, str], None] | None = None  # (suite, spec, where) once the suite is read
    params_check: Callable[[Mapping[str, Any], Mapping[str, Any], str, bool], None] | None = None
    # ^ replaces the params-name check: (params, options, where, has_validation), e.g. a search's grid


class ParamProblem(SpecError):
    """A parameter value refused by a kind's check; ``located`` names its key path."""

    def __init__(self, key: str, problem: str, message: str | None = None) -> None:
        super().__init__(message or f"parameter {key!r}: {problem}")
        self.key, self.problem = key, problem

    def located(self, where: str) -> SpecError:
        """The same problem at ``where.params.<key>``."""
        return SpecError(f"{where}.params.{self.key}: {self.problem}")


KINDS: dict[str, KindFacts] = {}
#: option key -> check(value, where) returning the checked value (registered by the family that reads it)
OPTION_CHECKS: dict[str, Callable[[Any, str], Any]] = {}
#: ``[harness.<name>]`` section -> check(Table) returning the checked table as a dict
SECTION_CHECKS: dict[str, Callable[[Any], dict[str, Any]]] = {}
#: called after every build: (ctx, suite, spec, built) -> the candidate to use (e.g. served by vLLM)
BUILD_WRAPPERS: list[Callable[[Any, Any, Any, Any], Any]] = []
_discovered: list[bool] = []


def register_kind(*facts: KindFacts) -> None:
    """Register kinds; a name registered twice by different builders is a programming error."""
    for item in facts:
        known = KINDS.get(item.name)
        if known is not None and known.builder is not item.builder:
            raise ValueError(f"candidate kind {item.name!r} is registered twice")
        if not callable(item.builder):
            raise TypeError(f"candidate kind {item.name!r}: builder {item.builder!r} is not callable")
        KINDS[item.name] = item


def register_option_check(key: str, check: Callable[[Any, str], Any]) -> None:
    """Register the value check of option ``key`` (``check(value, where)`` returns the checked value)."""
    OPTION_CHECKS[key] = check


def register_section_check(name: str, check: Callable[[Any], dict[str, Any]]) -> None:
    """Register the check of the ``[harness.<name>]`` section."""
    SECTION_CHECKS[name] = check


def register_build_wrapper(wrap: Callable[[Any, Any, Any, Any], Any]) -> None:
    """Register ``wrap(ctx, suite, spec, built)``, applied to every built candidate (once)."""
    if wrap not in BUILD_WRAPPERS:
        BUILD_WRAPPERS.append(wrap)


def discover_entry_points() -> None:
    """Load every ``harness.kinds`` entry point once (third-party families register on import)."""
    if _discovered:
        return
    _discovered.append(True)
    from importlib.metadata import entry_points

    for point in entry_points(group=ENTRY_POINT_GROUP):
        loaded = point.load()
        if callable(loaded):
            loaded()


def kind_facts(name: str) -> KindFacts:
    """The facts of kind ``name``; KeyError naming the registered kinds otherwise."""
    try:
        return KINDS[name]
    except KeyError:
        raise KeyError(f"unknown kind {name!r} (known: {', '.join(KINDS) or 'none registered'})") from None


def param_names(kind: str) -> frozenset[str]:
    """The parameter names a trained ``kind`` accepts (its trainer's defaults)."""
    params = kind_facts(kind).params
    return frozenset(params) if params is not None else frozenset()


def build(ctx: Any, suite: Any, spec: Any) -> Any:
    """Build (train or load) candidate ``spec`` with its kind's builder, then every build wrapper."""
    built = kind_facts(spec.kind).builder(ctx, suite, spec)
    for wrap in BUILD_WRAPPERS:
        built = wrap(ctx, suite, spec, built)
    return built

"""Custom scorers (``[suites.<name>.scorers]``): user functions ``"package.module:function"`` that
take an example and an output and return a number or a bool, imported when the spec loads.

Each becomes the per-example metric ``scorer:<name>`` (gateable, in slices, compared like ROUGE);
its score signature carries a hash of the function's source, so editing the scorer makes an old
baseline read ``not comparable`` instead of gating against numbers of another definition.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import SpecError
from harness.spec.table import Table

_TARGET = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*$")
_NAME = re.compile(r"^[A-Za-z_][\w\-]*$")


@dataclass(frozen=True)
class ScorerSpec:
    """One custom scorer: its metric name, where it lives, the function and its source hash."""

    name: str
    target: str
    function: Callable[..., Any]
    source_hash: str

    @property
    def metric(self) -> str:
        """The metric name the suite reports it under."""
        return f"scorer:{self.name}"

    @property
    def signature(self) -> str:
        return f"scorer|{self.target}|source:{self.source_hash}"


def source_hash(function: Callable[..., Any]) -> str:
    """A short hash of the function's source (its bytecode where the source cannot be read)."""
    try:
        text = inspect.getsource(function).encode("utf-8")
    except (OSError, TypeError):
        code = getattr(function, "__code__", None)
        text = code.co_code if code is not None else repr(function).encode("utf-8")
    return hashlib.sha256(text).hexdigest()[:12]


def import_target(target: str, search: tuple[Path, ...], where: str) -> Callable[..., Any]:
    """The function ``"package.module:function"`` names, imported from the user's project
    (``search``: the spec's directory and the working directory are tried after ``sys.path``)."""
    if not _TARGET.match(target):
        raise SpecError(f"{where}: expected \"package.module:function\", got {target!r}")
    module_name, _, attribute = target.partition(":")
    added = [str(p) for p in search if str(p) not in sys.path]
    sys.path.extend(added)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SpecError(f"{where}: cannot import {module_name!r} ({exc}); the module must be importable "
                        f"from the project (looked on sys.path and in {', '.join(map(str, search))})") from None
    except Exception as exc:  # the user's module raised while importing
        raise SpecError(f"{where}: importing {module_name!r} failed: {type(exc).__name__}: {exc}") from None
    function = getattr(module, attribute, None)
    if function is None:
        raise SpecError(f"{where}: module {module_name!r} has no {attribute!r}")
    if not callable(function):
        raise SpecError(f"{where}: {target!r} is not callable (a {type(function).__name__})")
    return function


def check_scorers(t: Table | None, spec_dir: Path) -> tuple[ScorerSpec, ...]:
    """``[suites.<name>.scorers]``: ``name = "package.module:function"`` per scorer."""
    if t is None:
        return ()
    scorers = []
    for name in t:
        if not _NAME.match(name):
            raise SpecError(f"{t.at(name)}: a scorer name is letters, digits, _ and - (got {name!r})")
        target = t.string(name, required=True)
        function = import_target(str(target), (spec_dir, Path.cwd()), t.at(name))
        scorers.append(ScorerSpec(name, str(target), function, source_hash(function)))
    return tuple(scorers)

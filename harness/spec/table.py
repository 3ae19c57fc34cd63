"""Reading one TOML table of the spec: typed getters whose errors name the file and key path."""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Iterator
from typing import Any, Literal, overload

from harness.errors import SpecError
from harness.protocol import MAX_SEED

_TYPE_NAMES = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
               list: "a list", dict: "a table"}


def show(value: Any) -> str:
    """A value as the error messages quote it: its TOML type and a short repr."""
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    kind = _TYPE_NAMES.get(type(value), type(value).__name__)
    return f"{kind} {text}"


def unknown_key(where: str, key: str, known: Iterable[str]) -> SpecError:
    """``<where>.<key>: unknown key (did you mean ...? known: ...)``."""
    known = sorted(known)
    close = difflib.get_close_matches(str(key), known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return SpecError(f"{where}.{key}: unknown key ({hint}known: {', '.join(known) or 'none'})")


class Table:
    """A TOML table at key path ``where``; with ``known``, any other key is refused at once."""

    def __init__(self, value: Any, where: str, known: Iterable[str] | None = None, *, top: bool = False) -> None:
        if not isinstance(value, dict):
            raise SpecError(f"{where}: expected a table, got {show(value)}")
        self.data: dict[str, Any] = value
        self.where = where
        self._top = top
        if known is not None:
            known = tuple(known)
            for key in value:
                if key not in known:
                    raise unknown_key(where, key, known) if not top else SpecError(
                        f"{where} {key}: unknown top-level key (known: {', '.join(known)})")

    def at(self, key: str) -> str:
        """The key path of ``key`` in this table."""
        return f"{self.where} {key}" if self._top else f"{self.where}.{key}"

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def items(self) -> Iterator[tuple[str, Any]]:
        return iter(self.data.items())

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def _present(self, key: str, required: bool) -> bool:
        if key in self.data:
            return True
        if required:
            raise SpecError(f"{self.at(key)}: missing key {key!r}")
        return False

    @overload
    def string(self, key: str, default: str, *, required: bool = False, choices: Iterable[str] | None = None,
               nonempty: bool = True) -> str: ...

    @overload
    def string(self, key: str, default: None = None, *, required: Literal[True],
               choices: Iterable[str] | None = None, nonempty: bool = True) -> str: ...

    @overload
    def string(self, key: str, default: None = None, *, required: bool = False,
               choices: Iterable[str] | None = None, nonempty: bool = True) -> str | None: ...

    def string(self, key: str, default: str | None = None, *, required: bool = False,
               choices: Iterable[str] | None = None, nonempty: bool = True) -> str | None:
        """A string value (non-empty unless ``nonempty=False``; one of ``choices`` if given)."""
        if not self._present(key, required):
            return default
        value = self.data[key]
        if not isinstance(value, str):
            raise SpecError(f"{self.at(key)}: expected a string, got {show(value)}")
        if choices is not None:
            choices = tuple(choices)
            if value not in choices:
                raise SpecError(f"{self.at(key)}: {value!r} is not one of {', '.join(choices)}")
        elif nonempty and not value.strip():
            raise SpecError(f"{self.at(key)}: expected a non-empty string")
        return value

    def integer(self, key: str, default: int, *, minimum: int | None = None,
                maximum: int | None = None) -> int:
        """A whole number (not a boolean, not a float), within ``minimum`` / ``maximum`` if given."""
        if not self._present(key, False):
            return default
        value = self.data[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpecError(f"{self.at(key)}: expected an integer, got {show(value)}")
        if minimum is not None and value < minimum:
            raise SpecError(f"{self.at(key)}: expected an integer >= {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise SpecError(f"{self.at(key)}: expected an integer <= {maximum:,}, got {value}")
        return value

    def seed(self, key: str) -> int:
        """A seed: an integer in [0, 2**32) (numpy and torch take 32-bit seeds)."""
        return self.integer(key, 0, minimum=0, maximum=MAX_SEED)

    def number(self, key: str, default: float, *, minimum: float | None = None,
               maximum: float | None = None) -> float:
        """A finite number (integer or float, not a boolean), within ``minimum`` / ``maximum`` if given."""
        if not self._present(key, False):
            return default
        value = self.data[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise SpecError(f"{self.at(key)}: expected a finite number, got {show(value)}")
        if minimum is not None and value < minimum:
            raise SpecError(f"{self.at(key)}: expected a number >= {minimum:g}, got {value}")
        if maximum is not None and value > maximum:
            raise SpecError(f"{self.at(key)}: expected a number <= {maximum:g}, got {value}")
        return float(value)

    def boolean(self, key: str, default: bool) -> bool:
        """``true`` or ``false``."""
        if not self._present(key, False):
            return default
        value = self.data[key]
        if not isinstance(value, bool):
            raise SpecError(f"{self.at(key)}: expected true or false, got {show(value)}")
        return value

    def strings(self, key: str) -> tuple[str, ...]:
        """A list of non-empty strings (empty tuple when absent)."""
        if not self._present(key, False):
            return ()
        value = self.data[key]
        if not isinstance(value, list):
            raise SpecError(f"{self.at(key)}: expected a list of strings like [\"a\", \"b\"], got {show(value)}")
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item:
                raise SpecError(f"{self.at(key)}[{i}]: expected a non-empty string, got {show(item)}")
        return tuple(value)

    def table(self, key: str, *, known: Iterable[str] | None = None) -> Table | None:
        """A sub-table (None when absent); with ``known``, its keys are checked too."""
        if not self._present(key, False):
            return None
        return Table(self.data[key], self.at(key), known)

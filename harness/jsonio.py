"""Atomic file writes and strict JSON: a reader sees the old file or the new one, never half of
either, and every JSON text the harness writes parses under a strict parser.

Every writer in the package goes through :func:`atomic_path` (the temp file beside the target,
then ``os.replace``): text through :func:`write_atomic`, bytes through :func:`write_atomic_bytes`,
and library writers (pandas, ``datasets``) by writing to the path it yields. Every JSON text goes
through :func:`strict_dumps`: NaN and ±inf become ``null`` (JSON has no token for them) and
``allow_nan=False`` guarantees none slips through.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def finite(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, ±inf) replaced by ``None``, containers walked."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def strict_dumps(value: Any, *, default: Callable[[Any], Any] | None = None, **options: Any) -> str:
    """``json.dumps`` that writes strict JSON: non-finite numbers as ``null`` (also those that
    ``default`` produces), never a bare ``NaN`` / ``Infinity`` token."""
    if default is not None:
        value = json.loads(json.dumps(value, default=default, allow_nan=True))
    return json.dumps(finite(value), allow_nan=False, **options)


@contextmanager
def atomic_path(path: Path, *, durable: bool = True, prefix: str | None = None,
                suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary path beside ``path`` that replaces ``path`` when the block ends without error.

    ``durable`` fsyncs the file and its folder (skip it for re-buildable cache entries);
    ``prefix`` names the temp file (default ``.<name>.``), for callers that sweep leftovers;
    ``suffix`` ends it (a reader that goes by the extension can check the temp file).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=prefix or f".{path.name}.", suffix=suffix)
    os.close(fd)
    temp = Path(temp_name)
    try:
        yield temp
        if durable:
            _fsync_file(temp)
        os.chmod(temp, 0o644)  # mkstemp creates 0600; reports and the baseline are shared files
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    if durable:
        _fsync_directory(path.parent)


def write_atomic(path: Path, text: str, *, check: Callable[[Path], object] | None = None) -> None:
    """Replace ``path`` with ``text`` atomically; ``check`` may inspect (and refuse) the temp file first.

    With a ``check`` the temp file keeps ``path``'s extension, so readers that go by it accept it.
    """
    with atomic_path(path, suffix=f".tmp{path.suffix}" if check else ".tmp") as temp:
        temp.write_text(text, encoding="utf-8")
        if check is not None:
            check(temp)


def write_atomic_bytes(path: Path, data: bytes, *, durable: bool = True,
                       prefix: str | None = None) -> None:
    """Replace ``path`` with ``data`` atomically (see :func:`atomic_path` for the options)."""
    with atomic_path(path, durable=durable, prefix=prefix) as temp:
        temp.write_bytes(data)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_directory(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # not every platform opens directories
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

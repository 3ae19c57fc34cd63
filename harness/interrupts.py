"""Ctrl-C recorded where nothing can swallow it.

Python raises ``KeyboardInterrupt`` wherever the main thread happens to be; raised inside a
finalizer, a weakref callback or a library's broad ``except``, it is printed and dropped and the run
goes on. The harness's SIGINT handler counts every interrupt *before* raising, so a run that was
interrupted is known as such whatever happened to the exception: it never updates the baseline.
:func:`deferred` holds interrupts back (counting them) while a short critical step completes.

Once an interrupted run has written its short report, :func:`exit_now` ends the process the way a
normal exit does, minus the part that takes seconds: it flushes the standard streams, waits for
non-daemon threads and runs the ``atexit`` handlers (log handlers flushed and closed, vLLM servers
stopped, cache scratch folders removed, MLflow runs ended), then leaves with ``os._exit`` instead of
tearing down the interpreter (garbage-collecting every model, tensor and module of torch,
transformers and the rest), which is what made Ctrl-C take several seconds to return.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn


class _State:
    received = 0  # interrupts since install() / reset()
    deferring = 0  # nesting depth of deferred()
    installed: Any = None  # the handler replaced, while ours is installed


def _handler(signum: int, frame: Any) -> None:
    _State.received += 1
    if not _State.deferring:
        raise KeyboardInterrupt


def install() -> bool:
    """Install the recording handler (main thread, default Python handler only); True when installed."""
    if _State.installed is not None or threading.current_thread() is not threading.main_thread():
        return False
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        return False  # ignored (a background job) or someone else's handler: leave it alone
    _State.installed = signal.signal(signal.SIGINT, _handler)
    return True


def active() -> bool:
    """Whether the recording handler is the SIGINT handler now."""
    return signal.getsignal(signal.SIGINT) is _handler


def uninstall() -> None:
    """Put the previous handler back."""
    if _State.installed is not None:
        signal.signal(signal.SIGINT, _State.installed)
        _State.installed = None


def received() -> bool:
    """Whether an interrupt arrived since the handler was installed (or :func:`reset`)."""
    return _State.received > 0


def note() -> None:
    """Record an interrupt that reached the harness another way (a ``KeyboardInterrupt`` caught)."""
    _State.received += 1


def reset() -> None:
    """Forget interrupts received so far."""
    _State.received = 0


@contextmanager
def deferred(*, raise_after: bool = True) -> Iterator[None]:
    """Hold interrupts back while the block runs; afterwards raise one if any arrived meanwhile
    (``raise_after``), else only leave it recorded."""
    before = _State.received
    _State.deferring += 1
    try:
        yield
    finally:
        _State.deferring -= 1
    if raise_after and _State.received > before and not _State.deferring:
        raise KeyboardInterrupt


def _flush_std_streams() -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        with contextlib.suppress(Exception):
            if stream is not None:
                stream.flush()


def exit_now(code: int) -> NoReturn:
    """End the process with ``code`` after an interrupt: flush the standard streams, wait for
    non-daemon threads and run the ``atexit`` handlers as a normal exit does, then skip the
    interpreter's teardown (``os._exit``). Another Ctrl-C meanwhile only cuts the current step short."""
    if active():
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C is not held back
    for step in (_flush_std_streams, threading._shutdown, atexit._run_exitfuncs, _flush_std_streams):  # type: ignore[attr-defined]  # the interpreter's own exit steps
        try:
            step()
        except BaseException:  # an exit step that fails or is interrupted must not stop the exit
            continue
    os._exit(code)

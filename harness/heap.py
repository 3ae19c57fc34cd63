"""Long-lived objects kept out of the garbage collector's full passes.

A run imports torch, transformers, peft, trl and their kin: millions of objects that live until the
process ends. Every full collection walks all of them, about 0.3 s each on a 2-core machine, and a run
pays several: the collector's own, training libraries', and pytest's five passes at exit (which look
for unraisable exceptions). :func:`settle` collects once (so nothing that is garbage now is kept) and
then moves every surviving object to the permanent generation (:func:`gc.freeze`), so later passes walk
only what the run creates afterwards. Frozen objects are still freed by reference counting when
dropped; only a frozen object later caught in an unreachable cycle waits for the process to end, so
only the evaluation session settles, at moments when nothing transient of its own is alive: before
each candidate build and once the pytest session has finished. Library code that also runs inside a
long-lived server (training, model loading) never does: there it would keep whatever cycles a
request happened to hold.
"""

from __future__ import annotations

import gc


def settle() -> None:
    """Collect garbage once, then leave every object alive now out of later full collections."""
    gc.collect()
    gc.freeze()

"""harness.heap.settle: garbage collected first, survivors frozen, frozen objects still freed when dropped."""

from __future__ import annotations

import gc
import weakref

from harness.heap import settle


class Node:
    """A reference-cycle-capable object with a weak reference to observe its end."""

    def __init__(self) -> None:
        self.other: Node | None = None


def test_garbage_is_collected_before_the_survivors_are_frozen():
    cycle_a, cycle_b = Node(), Node()
    cycle_a.other, cycle_b.other = cycle_b, cycle_a
    gone = weakref.ref(cycle_a)
    del cycle_a, cycle_b  # unreachable, but only a collection frees a cycle
    settle()
    assert gone() is None  # not frozen as garbage: collected first


def test_a_frozen_object_is_still_freed_when_its_last_reference_goes():
    kept = Node()
    freed = weakref.ref(kept)
    settle()
    del kept
    assert freed() is None  # reference counting, not the collector, frees it


def test_later_collections_leave_frozen_objects_alone():
    kept = [Node() for _ in range(1000)]
    walked = {id(obj) for generation in range(3) for obj in gc.get_objects(generation=generation)}
    assert all(id(node) in walked for node in kept)
    settle()
    walked = {id(obj) for generation in range(3) for obj in gc.get_objects(generation=generation)}
    assert not any(id(node) in walked for node in kept)  # in the permanent generation now

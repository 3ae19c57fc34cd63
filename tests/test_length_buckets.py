"""Grouping a batch's prompts by length for the prefill: every row once, least padding + overhead."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from harness.backends.hf.greedy import length_buckets

lengths_lists = st.lists(st.integers(min_value=1, max_value=60), min_size=1, max_size=8)


def cost(lengths: list[int], groups: list[list[int]], overhead: int) -> int:
    return sum(len(g) * max(lengths[i] for i in g) + overhead for g in groups)


def cheapest(lengths: list[int], overhead: int) -> int:
    """By enumeration: every way to cut the length-sorted rows into consecutive runs."""
    ordered = sorted(lengths)
    best = None
    for cuts in itertools.product([False, True], repeat=len(ordered) - 1):
        runs, run = [], [ordered[0]]
        for length, cut in zip(ordered[1:], cuts, strict=True):
            if cut:
                runs.append(run)
                run = []
            run.append(length)
        runs.append(run)
        total = sum(len(r) * max(r) + overhead for r in runs)
        best = total if best is None else min(best, total)
    return best


@given(lengths_lists, st.integers(min_value=0, max_value=100))
def test_buckets_hold_every_row_once_at_the_least_cost(lengths, overhead):
    groups = length_buckets(lengths, overhead)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
    assert cost(lengths, groups, overhead) == cheapest(lengths, overhead)
    flat = [lengths[i] for g in groups for i in g]
    assert flat == sorted(flat)  # groups are runs of the length-sorted rows, shortest first


@given(lengths_lists)
def test_without_overhead_no_row_is_padded(lengths):
    for group in length_buckets(lengths, 0):
        assert len({lengths[i] for i in group}) == 1


def test_a_large_overhead_keeps_one_forward():
    assert length_buckets([3, 9, 5, 4], overhead=1000) == [[0, 3, 2, 1]]


def test_an_outlier_gets_its_own_forward():
    # one 60-token prompt among 8-token ones: padding all to 60 costs far more than one more forward
    assert length_buckets([8] * 7 + [60], overhead=32) == [list(range(7)), [7]]

"""Prompt construction of prompted candidates: seeded, stratified shots from train, never eval."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.backends.prompting import (
    Shot,
    ShotError,
    build_messages,
    plan_prompt,
    select_shots,
    shot_pool,
)
from harness.data.records import Example

SYSTEM = {"role": "system", "content": "Classify the review."}


def example(i: int, text: str, label: str) -> Example:
    return Example(f"train-{i}", [SYSTEM, {"role": "user", "content": text},
                                  {"role": "assistant", "content": label}])


def train_set(n_pos: int, n_neg: int) -> list[Example]:
    rows = [example(i, f"good thing {i}", "positive") for i in range(n_pos)]
    return rows + [example(n_pos + i, f"bad thing {i}", "negative") for i in range(n_neg)]


def test_stratified_shots_split_k_evenly_over_the_labels():
    pool, _ = shot_pool(train_set(30, 10), [], labels=["positive", "negative"])
    shots = select_shots(pool, 6, seed=0, labels=["positive", "negative"])
    assert Counter(s.label for s in shots) == {"positive": 3, "negative": 3}
    assert len({s.id for s in shots}) == 6


def test_shots_are_seeded():
    pool, _ = shot_pool(train_set(30, 30), [], labels=["positive", "negative"])
    first = [s.id for s in select_shots(pool, 4, seed=1, labels=["positive", "negative"])]
    again = [s.id for s in select_shots(pool, 4, seed=1, labels=["positive", "negative"])]
    other = [[s.id for s in select_shots(pool, 4, seed=seed, labels=["positive", "negative"])] for seed in range(2, 8)]
    assert first == again
    assert any(o != first for o in other)


def test_train_examples_that_repeat_an_eval_prompt_are_never_shots():
    train = train_set(5, 5)
    eval_prompts = [[SYSTEM, {"role": "user", "content": "good thing 0"}],
                    [SYSTEM, {"role": "user", "content": "bad thing 3"}]]
    plan = plan_prompt(train, eval_prompts, k=8, seed=0, labels=["positive", "negative"])
    assert plan.excluded_overlap == 2
    assert "train-0" not in plan.shot_ids and "train-8" not in plan.shot_ids
    assert len(plan.shot_ids) == 8


def test_more_shots_than_train_examples_is_refused():
    pool, _ = shot_pool(train_set(2, 2), [], labels=["positive", "negative"])
    with pytest.raises(ShotError, match=r"shots = 5 but the train split has only 4") as info:
        select_shots(pool, 5, seed=0, labels=["positive", "negative"])
    assert info.value.key == "shots"


def test_a_label_without_train_examples_is_refused_when_stratified():
    pool, _ = shot_pool(train_set(6, 0), [], labels=["positive", "negative"])
    with pytest.raises(ShotError, match=r"label 'negative' has no train example"):
        select_shots(pool, 2, seed=0, labels=["positive", "negative"])
    assert len(select_shots(pool, 2, seed=0, labels=["positive", "negative"], stratify=False)) == 2


def test_messages_put_instruction_in_the_system_turn_and_shots_before_the_prompt():
    shots = [Shot("train-1", ({"role": "user", "content": "a"}, {"role": "assistant", "content": "positive"}))]
    prompt = [SYSTEM, {"role": "user", "content": "the review"}]
    messages = build_messages(prompt, "Answer with one word.", shots)
    assert messages == [{"role": "system", "content": "Classify the review.\n\nAnswer with one word."},
                        {"role": "user", "content": "a"}, {"role": "assistant", "content": "positive"},
                        {"role": "user", "content": "the review"}]
    assert build_messages([{"role": "user", "content": "x"}], None, []) == [{"role": "user", "content": "x"}]


def test_zero_shots_draw_nothing_and_change_only_the_instruction():
    plan = plan_prompt([], [], k=0, seed=0, instruction="Be brief.")
    assert plan.shots == () and plan.build([{"role": "user", "content": "x"}])[0]["content"] == "Be brief."
    assert plan.signature() != plan_prompt([], [], k=0, seed=0, instruction="Be terse.").signature()


@settings(max_examples=60, deadline=None)
@given(n_pos=st.integers(1, 12), n_neg=st.integers(1, 12), k=st.integers(0, 24), seed=st.integers(0, 10**6))
def test_stratified_counts_never_differ_by_more_than_one(n_pos, n_neg, k, seed):
    labels = ["positive", "negative"]
    pool, _ = shot_pool(train_set(n_pos, n_neg), [], labels=labels)
    try:
        shots = select_shots(pool, k, seed=seed, labels=labels)
    except ShotError as exc:
        assert k > n_pos + n_neg or max(k - k // 2, k // 2) > min(n_pos, n_neg), exc
        return
    counts = Counter(s.label for s in shots)
    assert sum(counts.values()) == k
    assert abs(counts["positive"] - counts["negative"]) <= 1
    assert len({s.id for s in shots}) == k

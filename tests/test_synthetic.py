"""The fixture generator: deterministic, in sync with the committed files, honest held-out."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.data.reading import read_source
from harness.errors import DatasetError

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "fixtures"
_SPEC = importlib.util.spec_from_file_location("fixture_generator", FIXTURES / "generate.py")
synthetic = importlib.util.module_from_spec(_SPEC)
sys.modules["fixture_generator"] = synthetic
_SPEC.loader.exec_module(synthetic)
GENERATED = [f"{task}/{split}.jsonl" for task in ("sentiment", "generation")
             for split in ("train", "validation", "eval")] + ["corpus.txt", "README.md"] + [
    "general/texts.jsonl", "general/prompts.jsonl", "refusals/advbench.csv", "refusals/harmbench.csv",
    "refusals/xstest.csv", "refusals/teach.jsonl", "refusals/teach_validation.jsonl"]
CONTRAST_BUT = re.compile(r"(?<!anything) but ")
CONTRAST_MARKERS = (" but ", "Although ", " however ", " despite ", "; still, ", " even though ",
                    "While ", " yet ")
NEGATIONS = ("not very", "not exactly", "not particularly", "not at all", "far from",
             "anything but", "not")


@pytest.fixture(scope="module")
def files() -> dict[str, str]:
    return synthetic.render_fixtures(0)


def records(files: dict[str, str], name: str) -> list[list[dict[str, str]]]:
    return [json.loads(line)["messages"] for line in files[name].splitlines()]


def users(messages: list[list[dict[str, str]]]) -> list[str]:
    return [m[1]["content"] for m in messages]


def answers(messages: list[list[dict[str, str]]]) -> list[str]:
    return [m[-1]["content"] for m in messages]


def frame_regex(template: str) -> re.Pattern[str]:
    """A template as a regex: each ``{slot}`` matches text within one sentence."""
    parts = re.split(r"\{\w+\}", template)
    return re.compile("[^.]+?".join(re.escape(p) for p in parts))


def held_out_patterns() -> list[re.Pattern[str]]:
    templates = [f.text for f in (*synthetic.STATEMENT_FRAMES, *synthetic.CONTRAST_FRAMES)
                 if f.held_out]
    for closing in synthetic.CLOSING_FRAMES:
        if closing.held_out:
            templates += [closing.positive, closing.negative]
    return [frame_regex(t) for t in templates]


# --- the committed files and determinism -------------------------------------------------------


def test_committed_fixtures_equal_a_fresh_run_byte_for_byte(tmp_path: Path) -> None:
    written = synthetic.write_fixtures(tmp_path, seed=0)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in written) == sorted(GENERATED)
    for name in GENERATED:
        assert (tmp_path / name).read_bytes() == (FIXTURES / name).read_bytes(), (
            f"fixtures/{name} is out of date: run python fixtures/generate.py")


def test_command_line_output_does_not_depend_on_hash_seed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    done = subprocess.run([sys.executable, str(FIXTURES / "generate.py"), "--out", str(out),
                           "--seed", "0"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    for name in GENERATED:
        assert (out / name).read_bytes() == (FIXTURES / name).read_bytes()


def test_writing_leaves_other_files_in_the_folder_alone(tmp_path: Path) -> None:
    (tmp_path / "candidates.toml").write_text("[base]\n", encoding="utf-8")
    synthetic.write_fixtures(tmp_path, seed=0)
    assert (tmp_path / "candidates.toml").read_text(encoding="utf-8") == "[base]\n"


def test_unwritable_output_is_a_clear_error(tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x", encoding="utf-8")
    assert synthetic.main(["--out", str(blocker)]) == 3
    err = capsys.readouterr().err
    assert "not-a-folder" in err and "cannot write fixture file" in err


def test_another_seed_gives_other_data(files: dict[str, str]) -> None:
    other = synthetic.render_fixtures(1)
    for name in GENERATED[:-1]:
        assert other[name] != files[name]
        assert set(other[name].splitlines()) != set(files[name].splitlines())


# --- format -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", GENERATED[:6])
def test_every_line_is_a_pure_openai_chat_record(files: dict[str, str], name: str) -> None:
    text = files[name]
    assert text.endswith("\n") and "\r" not in text
    for number, line in enumerate(text.splitlines(), start=1):
        record = json.loads(line)
        if name.startswith("generation/"):  # row metadata for the suite's slices, nothing else
            assert list(record) == ["messages", "metadata"], f"{name}:{number}"
            assert list(record["metadata"]) == ["category"], f"{name}:{number}"
            assert record["metadata"]["category"] in synthetic.PRODUCT_CATEGORIES, f"{name}:{number}"
        else:
            assert list(record) == ["messages"], f"{name}:{number}"
        messages = record["messages"]
        assert [m["role"] for m in messages] == ["system", "user", "assistant"], f"{name}:{number}"
        for message in messages:
            assert set(message) == {"role", "content"}
            assert isinstance(message["content"], str) and message["content"].strip()
            assert message["content"] == message["content"].strip()


@pytest.mark.parametrize("name", GENERATED[:6])
def test_committed_files_read_cleanly(name: str) -> None:
    raw = read_source(FIXTURES / name)
    assert raw.findings == []
    assert len(raw.rows) == len((FIXTURES / name).read_text(encoding="utf-8").splitlines())


def test_split_sizes(files: dict[str, str]) -> None:
    for task, sizes in (("sentiment", synthetic.SENTIMENT_SIZES),
                        ("generation", synthetic.GENERATION_SIZES)):
        for split, size in sizes.items():
            assert len(files[f"{task}/{split}.jsonl"].splitlines()) == size


# --- sentiment --------------------------------------------------------------------------------


def test_sentiment_labels_are_the_two_words_and_balanced(files: dict[str, str]) -> None:
    for split in synthetic.SPLITS:
        counts = Counter(answers(records(files, f"sentiment/{split}.jsonl")))
        assert set(counts) == {"positive", "negative"}
        total = sum(counts.values())
        assert abs(counts["positive"] - total / 2) <= 0.1 * total


def test_reviews_are_short_and_one_to_three_sentences(files: dict[str, str]) -> None:
    for split in synthetic.SPLITS:
        for review in users(records(files, f"sentiment/{split}.jsonl")):
            assert len(review.split()) <= synthetic.MAX_REVIEW_WORDS
            assert review.endswith(".") and 1 <= review.count(".") <= 3


def test_sentiment_has_variety(files: dict[str, str]) -> None:
    reviews = users(records(files, "sentiment/train.jsonl"))
    share = lambda hits: sum(hits) / len(reviews)  # noqa: E731
    assert share(any(m in r for m in CONTRAST_MARKERS) for r in reviews) > 0.15
    assert share(re.search(r"\bnot\b|far from|anything but", r) is not None for r in reviews) > 0.2
    assert share(any(f" {word} " in r for word in synthetic.INTENSIFIERS) for r in reviews) > 0.2
    counts = Counter(r.count(".") for r in reviews)
    assert set(counts) == {1, 2, 3}
    domains = Counter(next(d for d, v in synthetic.DOMAINS.items()
                           if any(a in r for aspects in v.aspects.values() for a in aspects)
                           or any(s in r.lower() for s in v.subjects)) for r in reviews)
    assert len(domains) == 3 and min(domains.values()) > 0.2 * len(reviews)


def _polarity() -> dict[str, str]:
    table: dict[str, str] = {}
    for positive, negative in synthetic.ADJECTIVES.values():
        for words, label in ((positive, "positive"), (negative, "negative")):
            for word in words:
                assert table.setdefault(word, label) == label, f"{word!r} has both polarities"
    return table


def _clause_label(clause: str, polarity: dict[str, str]) -> str | None:
    """The sentiment of one clause: its adjective's polarity, flipped by a negation before it."""
    words = re.findall(r"[a-z]+", clause.lower())
    hits = [i for i, w in enumerate(words) if w in polarity]
    if len(hits) != 1:
        return None
    i = hits[0]
    before = " " + " ".join(words[max(0, i - 3):i])
    label = polarity[words[i]]
    if any(before.endswith(" " + negation) for negation in NEGATIONS):
        label = "negative" if label == "positive" else "positive"
    return label


def contrast_regexes() -> list[re.Pattern[str]]:
    """Each contrast frame as a regex with ``label`` and ``opposing`` groups."""
    regexes = []
    for frame in synthetic.CONTRAST_FRAMES:
        parts = re.split(r"(\{\w+\})", frame.text)
        pattern = "".join(f"(?P<{p[1:-1]}>[^.]+?)" if p.startswith("{") else
                          re.escape(p).replace(r"\ but\ ", r"(?<!anything) but ")
                          for p in parts)
        regexes.append(re.compile(pattern, re.IGNORECASE))
    return regexes


def test_contrast_frames_give_the_label_to_the_answering_clause() -> None:
    """After a concessive marker comes the outweighed clause, after an adversative the winner."""
    after = {"Although ": "{opposing}", "While ": "{opposing}", "even though ": "{opposing}",
             "despite the fact that ": "{opposing}", "but ": "{label}", "however ": "{label}",
             "still, ": "{label}", "yet ": "{label}"}
    for frame in synthetic.CONTRAST_FRAMES:
        found = [(marker, slot) for marker, slot in after.items() if marker in frame.text]
        assert found, frame.text
        for marker, slot in found:
            assert frame.text.split(marker, 1)[1].startswith(slot), frame.text


def test_labels_follow_adjectives_negation_and_contrast(files: dict[str, str]) -> None:
    polarity = _polarity()
    redeeming = {"made up for it": "positive", "saved it": "positive",
                 "ruined it": "negative", "let it down": "negative"}
    opposite = {"positive": "negative", "negative": "positive"}
    contrasts = contrast_regexes()
    checked = Counter()
    for split in synthetic.SPLITS:
        for messages in records(files, f"sentiment/{split}.jsonl"):
            review, label = messages[1]["content"], messages[2]["content"]
            if review.count(".") != 1:
                continue
            match = next((m for r in contrasts if (m := r.fullmatch(review))), None)
            if match:
                clause = match["label"]
                said = next((v for k, v in redeeming.items() if clause.endswith(k)), None)
                said = said or _clause_label(clause, polarity)
                against = _clause_label(match["opposing"], polarity)
                if said is None or against is None:
                    continue
                assert (said, against) == (label, opposite[label]), (split, review, label)
                checked["contrast"] += 1
            elif not any(m in review.replace("anything but", "") for m in CONTRAST_MARKERS):
                said = _clause_label(review, polarity)
                if said is None:
                    continue
                assert said == label, (split, review, label)
                negated = re.search(r"\bnot\b|far from|anything but", review)
                checked["negated" if negated else "plain"] += 1
    assert min(checked["plain"], checked["negated"], checked["contrast"]) >= 30, checked


def test_closing_verdicts_agree_with_the_label(files: dict[str, str]) -> None:
    verdicts = {}
    for closing in synthetic.CLOSING_FRAMES:
        for domain in synthetic.DOMAINS.values():
            verdicts[closing.positive.format(again=domain.again)] = "positive"
            verdicts[closing.negative.format(again=domain.again)] = "negative"
    seen = 0
    for split in synthetic.SPLITS:
        for messages in records(files, f"sentiment/{split}.jsonl"):
            review, label = messages[1]["content"], messages[2]["content"]
            last = review.rsplit(". ", 1)[-1]
            if last in verdicts:
                assert label == verdicts[last], review
                seen += 1
    assert seen > 50


def test_no_eval_or_validation_review_occurs_in_train(files: dict[str, str]) -> None:
    train = set(users(records(files, "sentiment/train.jsonl")))
    for split in ("validation", "eval"):
        assert not train & set(users(records(files, f"sentiment/{split}.jsonl")))
    everything = [review for split in synthetic.SPLITS
                  for review in users(records(files, f"sentiment/{split}.jsonl"))]
    assert len(everything) == len(set(everything))


def test_a_leaked_eval_text_is_refused_with_its_location() -> None:
    splits = synthetic.sentiment_splits(0)
    leaked = splits["eval"][6]
    splits["train"] = [*splits["train"], leaked]
    with pytest.raises(DatasetError) as caught:
        synthetic._check_held_out("sentiment", splits, corpus=set())
    assert caught.value.path == "fixtures/sentiment/eval.jsonl" and caught.value.line == 7
    assert "also occurs in train" in str(caught.value)
    clean = synthetic.sentiment_splits(0)
    with pytest.raises(DatasetError, match="corpus"):
        synthetic._check_held_out("sentiment", clean, corpus={leaked["messages"][1]["content"]})


def test_held_out_frames_only_in_validation_and_eval(files: dict[str, str]) -> None:
    patterns = held_out_patterns()
    assert len(patterns) >= 10
    for line in users(records(files, "sentiment/train.jsonl")) + files["corpus.txt"].splitlines():
        assert not any(p.search(line) for p in patterns), line
    used = Counter()
    for split in ("validation", "eval"):
        for review in users(records(files, f"sentiment/{split}.jsonl")):
            hits = [i for i, p in enumerate(patterns) if p.search(review)]
            assert hits, review
            used.update(hits)
    assert len(used) == len(patterns)  # every held-out template is exercised


def test_eval_shares_the_train_vocabulary(files: dict[str, str]) -> None:
    def words(name: str) -> set[str]:
        return {w for r in users(records(files, name)) for w in re.findall(r"[a-z]+", r.lower())}

    polarity = _polarity()
    train, evaluation = words("sentiment/train.jsonl"), words("sentiment/eval.jsonl")
    assert (evaluation & set(polarity)) <= train


# --- generation -------------------------------------------------------------------------------


def fields(prompt: str) -> dict[str, str]:
    return dict(part.split(": ", 1) for part in prompt.split(" | "))


def skeleton(reference: str, values: dict[str, str]) -> str:
    text = reference
    for key in ("name", "type", "colour", "material", "price"):
        if key in values:
            text = re.sub(rf"\b{re.escape(values[key])}\b", "{" + key + "}", text, count=1)
    return re.sub(r"\ban? \{colour\}", "A {colour}", text)


def test_references_are_short_and_carry_every_field(files: dict[str, str]) -> None:
    for split in synthetic.SPLITS:
        for messages in records(files, f"generation/{split}.jsonl"):
            values, reference = fields(messages[1]["content"]), messages[2]["content"]
            assert reference.strip() and len(reference.split()) <= synthetic.MAX_DESCRIPTION_WORDS
            assert set(values) in ({"name", "type", "colour", "price"},
                                   {"name", "type", "colour", "price", "material"})
            for value in values.values():
                assert re.search(rf"\b{re.escape(value)}\b", reference), (value, reference)


def test_target_template_is_a_function_of_type_and_material(files: dict[str, str]) -> None:
    by_key: dict[tuple[str, bool], set[str]] = {}
    for split in synthetic.SPLITS:
        for messages in records(files, f"generation/{split}.jsonl"):
            values = fields(messages[1]["content"])
            key = (values["type"], "material" in values)
            by_key.setdefault(key, set()).add(skeleton(messages[2]["content"], values))
    assert all(len(s) == 1 for s in by_key.values()), by_key
    templates = {next(iter(s)) for s in by_key.values()}
    assert 4 <= len(templates) <= 12


def test_field_order_varies(files: dict[str, str]) -> None:
    orders = Counter(tuple(fields(u)) for u in users(records(files, "generation/train.jsonl")))
    assert len(orders) >= 20
    assert max(orders.values()) < 0.1 * sum(orders.values())


def test_eval_products_are_unseen_combinations(files: dict[str, str]) -> None:
    train = [fields(u) for u in users(records(files, "generation/train.jsonl"))]
    train_pairs = {(f["name"], f["type"]) for f in train}
    train_names = {f["name"] for f in train}
    for split in ("validation", "eval"):
        held = [fields(u) for u in users(records(files, f"generation/{split}.jsonl"))]
        assert not {(f["name"], f["type"]) for f in held} & train_pairs
        new_names = [f for f in held if f["name"] not in train_names]
        assert 0.3 * len(held) <= len(new_names) <= 0.7 * len(held)
        assert not set(answers(records(files, f"generation/{split}.jsonl"))) & set(
            answers(records(files, "generation/train.jsonl")))


# --- corpus -----------------------------------------------------------------------------------


def test_corpus_holds_the_vocabulary_but_no_held_out_text(files: dict[str, str]) -> None:
    lines = files["corpus.txt"].splitlines()
    assert 2000 <= len(lines) <= 10000
    assert all(line.strip() == line and line for line in lines)
    for needed in (synthetic.SENTIMENT_SYSTEM, synthetic.GENERATION_SYSTEM, "positive", "negative"):
        assert needed in lines
    corpus = set(lines)
    for task in ("sentiment", "generation"):
        for split in ("validation", "eval"):
            messages = records(files, f"{task}/{split}.jsonl")
            assert not corpus & set(users(messages))
            if task == "generation":
                assert not corpus & set(answers(messages))
    text = files["corpus.txt"]
    assert not [n for n in synthetic.HELD_OUT_NAMES if re.search(rf"\b{n}\b", text)]
    assert sum("dollars" in line for line in lines) > 500
    assert sum(line.endswith(".") and "dollars" not in line for line in lines) > 1000


# --- any seed ---------------------------------------------------------------------------------


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**31 - 1))
def test_invariants_hold_for_any_seed(seed: int) -> None:
    generated = synthetic.render_fixtures(seed)
    patterns = held_out_patterns()
    sentiment = {s: records(generated, f"sentiment/{s}.jsonl") for s in synthetic.SPLITS}
    train = set(users(sentiment["train"]))
    for split, messages in sentiment.items():
        counts = Counter(answers(messages))
        assert abs(counts["positive"] - counts["negative"]) <= 1
        if split != "train":
            assert not train & set(users(messages))
            assert all(any(p.search(r) for p in patterns) for r in users(messages))
    assert not any(any(p.search(r) for p in patterns) for r in train)
    corpus = set(generated["corpus.txt"].splitlines())
    assert not corpus & set(users(sentiment["eval"]))
    assert f"--seed {seed}`" in generated["README.md"]

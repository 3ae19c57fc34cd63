"""Synthetic Q/A data: robust parsing, cleaning, de-duplication, and the CLI over real HTTP."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from harness.data import load_split
from harness.data.synth import (
    QAPair,
    clean_pair,
    dedupe,
    normalise_question,
    parse_qa_pairs,
    synthesize,
    write_chat_jsonl,
)
from harness.serve.app import ServerSettings
from harness.serve.faults import FaultConfig
from harness.serve.runtime import serve_in_thread
from harness.serve.scripted import ScriptedBackend

line_text = st.text(alphabet=st.characters(categories=["L", "N", "Zs"], exclude_characters="\u3000"),
                    min_size=1, max_size=40).map(lambda s: " ".join(s.split())).filter(bool)


def test_json_array_inside_prose_and_fences():
    reply = ('Sure! Here you go:\n```json\n[{"question": "What is 2+2?", "answer": "4"},\n'
             ' {"Q": "Capital of France?", "A": "Paris"}]\n```\nHope that helps [really].')
    assert parse_qa_pairs(reply) == [QAPair("What is 2+2?", "4"), QAPair("Capital of France?", "Paris")]


def test_json_containers_aliases_and_number_answers():
    reply = json.dumps({"pairs": [{"prompt": "Year of the moon landing?", "response": 1969},
                                  {"input": "Opposite of hot?", "output": "cold"},
                                  {"unrelated": "skipped"}]})
    assert parse_qa_pairs(reply) == [QAPair("Year of the moon landing?", "1969"),
                                     QAPair("Opposite of hot?", "cold")]
    assert parse_qa_pairs('[["Two-element list?", "yes"]]') == [QAPair("Two-element list?", "yes")]


def test_q_a_lines_with_numbering_markdown_and_multiline_answers():
    reply = """Here are some:
1. Q: What is the boiling point of water?
A: 100 °C at sea level.
It is lower at altitude.

**Question 2:** Who wrote Hamlet?
**Answer:** William Shakespeare

- Q3: A question with no answer

Q: Last one?
A: Yes."""
    assert parse_qa_pairs(reply) == [
        QAPair("What is the boiling point of water?", "100 °C at sea level.\nIt is lower at altitude."),
        QAPair("Who wrote Hamlet?", "William Shakespeare"),
        QAPair("Last one?", "Yes."),
    ]


def test_unparseable_replies_give_nothing():
    assert parse_qa_pairs("I cannot help with that.") == []
    assert parse_qa_pairs('[1, 2, {"broken": ') == []


@given(st.lists(st.tuples(line_text, line_text), min_size=1, max_size=8))
def test_json_and_line_formats_round_trip(pairs):
    expected = [QAPair(q, a) for q, a in pairs]
    as_json = "Result:\n" + json.dumps([{"question": q, "answer": a} for q, a in pairs]) + "\nDone."
    assert parse_qa_pairs(as_json) == expected
    as_lines = "\n\n".join(f"Q: {q}\nA: {a}" for q, a in pairs)
    assume_no_markers = all(not a.lower().startswith(("q", "a")) for _, a in pairs)
    if assume_no_markers:
        assert parse_qa_pairs(as_lines) == expected


def test_cleaning_rejects_and_strips():
    assert clean_pair(QAPair('  "Why?" ', " Because. "))[0] == QAPair("Why?", "Because.")
    assert clean_pair(QAPair("", "x"))[1] == "empty question"
    assert clean_pair(QAPair("x?", "  "))[1] == "empty answer"
    assert clean_pair(QAPair("Same thing", "same thing!"))[1] == "answer repeats the question"
    assert clean_pair(QAPair("q" * 2000, "a"))[1].startswith("question longer")


@given(st.lists(st.tuples(st.text(max_size=20), st.text(max_size=5))))
def test_dedupe_keeps_the_first_of_each_normalised_question(raw):
    pairs = [QAPair(q, a) for q, a in raw]
    kept, dropped = dedupe(pairs)
    keys = [normalise_question(p.question) for p in kept]
    assert len(keys) == len(set(keys)) and len(kept) + dropped == len(pairs)
    assert set(keys) == {normalise_question(p.question) for p in pairs}
    assert dedupe(kept) == (kept, 0)
    for pair in kept:  # the first occurrence is the one kept
        assert pair == next(p for p in pairs if normalise_question(p.question) == normalise_question(pair.question))


def test_normalisation_ignores_case_punctuation_and_spacing():
    assert normalise_question("What is  AI?") == normalise_question("what is ai")


def test_synthesize_collects_unique_pairs_across_requests():
    replies = iter([
        '[{"question": "A?", "answer": "1"}, {"question": "B?", "answer": "2"}]',
        "sorry, no",
        'Q: a\nA: dup\n\nQ: C?\nA: 3\n\nQ: empty?\nA:',
        '[{"question": "D?", "answer": "4"}, {"question": "E?", "answer": "5"}]',
    ])
    asked: list[str] = []

    def ask(messages, number):
        asked.append(messages[-1]["content"])
        return next(replies)

    result = synthesize(ask, "letters", 4, per_request=2)
    assert [p.question for p in result.pairs] == ["A?", "B?", "C?", "D?"]
    assert (result.requests, result.duplicates, result.unparseable_replies) == (4, 1, 1)
    assert result.rejected == {"empty answer": 1}
    assert "Do not repeat these questions:\n- A?\n- B?" in asked[1]
    assert "Write 2 diverse question and answer pairs about: letters" in asked[0]


def test_written_file_is_valid_chat_jsonl(tmp_path):
    path = write_chat_jsonl(tmp_path / "out" / "qa.jsonl", [QAPair("Q1?", "A1"), QAPair("Q2?", "A2")],
                            system="Answer briefly.")
    split = load_split(path)
    assert [ex.reference for ex in split.examples] == ["A1", "A2"]
    assert split.examples[0].messages[0] == {"role": "system", "content": "Answer briefly."}


def _quiz_backend():
    """A model that answers each request with a JSON array, repeating one question every time."""
    def reply(model, messages, params):
        seed = params.seed
        items = [{"question": "What is the shared question?", "answer": "always"}]
        items += [{"question": f"Question {seed}-{i} about {model}?", "answer": f"Answer {i}"}
                  for i in range(2)]
        if seed % 2:  # every other reply as Q:/A: lines
            return "\n\n".join(f"Q: {item['question']}\nA: {item['answer']}" for item in items)
        return f"Here they are: {json.dumps(items)}"
    return ScriptedBackend("quiz", reply)


def run_synth(args: list[str]) -> int:
    """``ft-harness data synth ARGS`` through the parser this module adds to ``data``."""
    import argparse

    from harness.cli.synth import add_synth_parser

    parser = argparse.ArgumentParser(prog="ft-harness data")
    add_synth_parser(parser.add_subparsers())
    parsed = parser.parse_args(["synth", *args])
    return parsed.func(parsed)


def test_cli_writes_n_pairs_from_a_served_model(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SYNTH_KEY", "sk-synth-unused-0000")
    faults = FaultConfig(rate=0.3, seed=5)
    with serve_in_thread(_quiz_backend(), settings=ServerSettings(faults=faults)) as server:
        out = tmp_path / "qa.jsonl"
        code = run_synth(["--endpoint", server.base_url, "--model", "quiz", "--topic", "anything",
                          "--n", "5", "--api-key-env", "SYNTH_KEY", "--per-request", "3",
                          "--quiet", str(out)])
    assert code == 0
    split = load_split(out)
    questions = [ex.messages[0]["content"] for ex in split.examples]
    assert len(questions) == 5 and questions.count("What is the shared question?") == 1
    assert "5 pairs" in capsys.readouterr().out


def test_cli_reports_shortfall(tmp_path, capsys):
    n = 50
    with serve_in_thread(_quiz_backend()) as server:
        out = tmp_path / "few.jsonl"
        args = ["--endpoint", server.base_url, "--model", "quiz", "--topic", "t", "--n", str(n),
                "--max-requests", "2", "--quiet", str(out)]
        code = run_synth(args)
    assert code == 1
    assert len(load_split(out)) == 5  # 1 shared + 2 new per request
    assert "duplicates dropped: 1" in capsys.readouterr().out

"""Synthetic question/answer data from a model: ask, parse robustly, validate, dedupe, write.

Replies are parsed as a JSON array (anywhere in the reply, fenced or not, objects keyed
``question`` / ``answer`` or common aliases) or, failing that, as ``Q:`` / ``A:`` lines. Pairs
are cleaned and checked, duplicates (by normalised question) are dropped, and the result is
written as chat JSONL that :func:`harness.data.load_split` accepts.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.data.loading import load_split
from harness.data.records import Message
from harness.jsonio import strict_dumps, write_atomic

QUESTION_KEYS = ("question", "q", "prompt", "input", "query", "instruction")
ANSWER_KEYS = ("answer", "a", "response", "output", "completion", "reply")
CONTAINER_KEYS = ("pairs", "questions", "items", "data", "qa", "examples", "results")
MAX_QUESTION_CHARS = 1000
MAX_ANSWER_CHARS = 4000
_FENCE = re.compile(r"```[a-zA-Z0-9_-]*\s*\n?(.*?)```", re.DOTALL)
_Q_LINE = re.compile(r"^\s*(?:[-*•]|\d+[.)])?\s*\**\s*(?:q|question)\s*\d*\s*\**\s*[:：]\s*\**\s*(.*)$", re.IGNORECASE)
_A_LINE = re.compile(r"^\s*(?:[-*•])?\s*\**\s*(?:a|answer)\s*\d*\s*\**\s*[:：]\s*\**\s*(.*)$", re.IGNORECASE)


@dataclass(frozen=True)
class QAPair:
    """One question and its answer."""

    question: str
    answer: str


def _pick(record: dict[str, Any], keys: Sequence[str]) -> Any:
    lowered = {str(k).strip().lower(): v for k, v in record.items()}
    for key in keys:
        if key in lowered:
            return lowered[key]
    return None


def _pairs_from_json(value: Any) -> list[QAPair]:
    if isinstance(value, dict):
        inner = _pick(value, CONTAINER_KEYS)
        if isinstance(inner, list):
            return _pairs_from_json(inner)
        question, answer = _pick(value, QUESTION_KEYS), _pick(value, ANSWER_KEYS)
        if isinstance(question, str) and isinstance(answer, (str, int, float)):
            return [QAPair(question, str(answer))]
        return []
    if isinstance(value, list):
        pairs: list[QAPair] = []
        for item in value:
            if isinstance(item, dict):
                pairs += _pairs_from_json(item)
            elif isinstance(item, list) and len(item) == 2 and all(isinstance(x, str) for x in item):
                pairs.append(QAPair(item[0], item[1]))
        return pairs
    return []


def _json_candidates(text: str) -> Iterable[Any]:
    """Every JSON array or object that starts somewhere in ``text`` (fenced blocks first)."""
    decoder = json.JSONDecoder()
    sources = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    for source in sources:
        index = 0
        while True:
            starts = [i for i in (source.find("[", index), source.find("{", index)) if i != -1]
            if not starts:
                break
            start = min(starts)
            try:
                value, end = decoder.raw_decode(source, start)
            except json.JSONDecodeError:
                index = start + 1
                continue
            yield value
            index = end


def _pairs_from_lines(text: str) -> list[QAPair]:
    pairs: list[QAPair] = []
    question: list[str] | None = None
    answer: list[str] | None = None

    def flush() -> None:
        if question is not None and answer is not None:
            pairs.append(QAPair(" ".join(question).strip(), "\n".join(answer).strip()))

    for line in text.splitlines():
        if (match := _Q_LINE.match(line)) is not None:
            flush()
            question, answer = [match.group(1)], None
        elif question is not None and answer is None and (match := _A_LINE.match(line)) is not None:
            answer = [match.group(1)]
        elif answer is not None:
            if not line.strip():
                flush()
                question = answer = None
            else:
                answer.append(line.strip())
        elif question is not None and line.strip():
            question.append(line.strip())
    flush()
    return pairs


def parse_qa_pairs(text: str) -> list[QAPair]:
    """All question/answer pairs in a model reply: JSON first, ``Q:`` / ``A:`` lines otherwise."""
    for value in _json_candidates(text):
        pairs = _pairs_from_json(value)
        if pairs:
            return pairs
    return _pairs_from_lines(text)


def _strip_wrapping(text: str) -> str:
    text = unicodedata.normalize("NFC", text).strip()
    text = text.strip("*_").strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'`":
        text = text[1:-1].strip()
    return text


def clean_pair(pair: QAPair, *, max_question_chars: int = MAX_QUESTION_CHARS,
               max_answer_chars: int = MAX_ANSWER_CHARS) -> tuple[QAPair | None, str | None]:
    """(cleaned pair, None) or (None, why it was rejected)."""
    question, answer = _strip_wrapping(pair.question), _strip_wrapping(pair.answer)
    if not question:
        return None, "empty question"
    if not answer:
        return None, "empty answer"
    if len(question) > max_question_chars:
        return None, f"question longer than {max_question_chars} characters"
    if len(answer) > max_answer_chars:
        return None, f"answer longer than {max_answer_chars} characters"
    if normalise_question(question) == normalise_question(answer):
        return None, "answer repeats the question"
    if "\x00" in question or "\x00" in answer:
        return None, "NUL character"
    return QAPair(question, answer), None


def normalise_question(text: str) -> str:
    """The duplicate-detection form: case-folded, punctuation and extra spaces removed."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = re.sub(r"[^\w\s]", " ", text)
    return " ".join(text.split())


def dedupe(pairs: Iterable[QAPair], seen: set[str] | None = None) -> tuple[list[QAPair], int]:
    """Pairs whose normalised question is new (``seen`` is updated); and how many were dropped."""
    seen = set() if seen is None else seen
    kept: list[QAPair] = []
    dropped = 0
    for pair in pairs:
        key = normalise_question(pair.question)
        if key in seen:
            dropped += 1
            continue
        seen.add(key)
        kept.append(pair)
    return kept, dropped


def to_chat_record(pair: QAPair, system: str | None = None) -> dict[str, Any]:
    """``{"messages": [...]}`` in OpenAI's chat fine-tuning format."""
    messages: list[Message] = [{"role": "system", "content": system}] if system else []
    messages += [{"role": "user", "content": pair.question},
                 {"role": "assistant", "content": pair.answer}]
    return {"messages": messages}


def request_messages(topic: str, count: int, avoid: Sequence[str] = ()) -> list[Message]:
    """The prompt asking for ``count`` new pairs about ``topic`` (listing some to avoid)."""
    prompt = (f"Write {count} diverse question and answer pairs about: {topic}.\n"
              "Reply with only a JSON array of objects with the keys \"question\" and \"answer\". "
              "Answers must be correct, self-contained and concise.")
    if avoid:
        listed = "\n".join(f"- {q}" for q in avoid)
        prompt += f"\nDo not repeat these questions:\n{listed}"
    return [{"role": "system", "content": "You write training data for question answering."},
            {"role": "user", "content": prompt}]


@dataclass
class SynthResult:
    """What a synthesis run produced and threw away."""

    pairs: list[QAPair] = field(default_factory=list)
    requests: int = 0
    unparseable_replies: int = 0
    duplicates: int = 0
    rejected: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        """One line for the CLI: kept, dropped and rejected counts."""
        rejected = ", ".join(f"{n} {why}" for why, n in sorted(self.rejected.items())) or "none"
        return (f"{len(self.pairs)} pairs from {self.requests} requests; duplicates dropped: "
                f"{self.duplicates}; rejected: {rejected}; unparseable replies: "
                f"{self.unparseable_replies}")


def synthesize(ask: Callable[[list[Message], int], str], topic: str, n: int, *,
               per_request: int = 10, max_requests: int | None = None, avoid_listed: int = 20,
               progress: Callable[[str], None] | None = None) -> SynthResult:
    """Ask ``ask(messages, request_number)`` for pairs until ``n`` unique valid ones are collected.

    Stops after ``max_requests`` (default: enough for three tries per batch) and returns what it
    has; the caller decides whether fewer than ``n`` is acceptable.
    """
    if n < 1 or per_request < 1:
        raise ValueError("n and per_request must be >= 1")
    max_requests = max_requests or 3 * -(-n // per_request) + 2
    result = SynthResult()
    seen: set[str] = set()
    while len(result.pairs) < n and result.requests < max_requests:
        wanted = min(per_request, n - len(result.pairs))
        avoid = [p.question for p in result.pairs[-avoid_listed:]] if avoid_listed else []
        reply = ask(request_messages(topic, wanted, avoid), result.requests)
        result.requests += 1
        parsed = parse_qa_pairs(reply)
        if not parsed:
            result.unparseable_replies += 1
        cleaned = []
        for pair in parsed:
            good, why = clean_pair(pair)
            if good is None:
                result.rejected[str(why)] = result.rejected.get(str(why), 0) + 1
            else:
                cleaned.append(good)
        kept, dropped = dedupe(cleaned, seen)
        result.duplicates += dropped
        result.pairs += kept[: n - len(result.pairs)]
        if progress:
            progress(f"request {result.requests}: {len(parsed)} parsed, {len(kept)} new, "
                     f"{len(result.pairs)}/{n} collected")
    return result


def write_chat_jsonl(path: str | Path, pairs: Sequence[QAPair], *, system: str | None = None) -> Path:
    """Write pairs as chat JSONL atomically, after loading them back with the harness validator."""
    path = Path(path)
    text = "".join(strict_dumps(to_chat_record(p, system), ensure_ascii=False) + "\n" for p in pairs)
    write_atomic(path, text, check=lambda temp: load_split(temp, name=path.stem, format="chat"))
    return path

"""The record formats the harness understands and their conversion to and from chat form.

Formats (``Example.messages`` is always the chat form):

* ``chat``: OpenAI chat, ``{"messages": [{"role": ..., "content": ...}, ...]}``.
* ``instruction``: the Alpaca form, ``{"instruction", "input", "output"}`` (optional
  ``system``; a blank one counts as none). The user turn is the instruction, then a blank line and the input when the
  input is not empty; converting back splits the user turn at its first blank line.
* ``prompt_completion``: ``{"prompt": str, "completion": str}``, or TRL's conversational
  variant where both are message lists.
* ``text``: ``{"text": str}`` (a ``.txt`` file gives one per non-blank line); it becomes a
  single assistant turn, so there is nothing to condition on.

Functions here assume a record that passed :mod:`harness.data.checks`.
"""

from __future__ import annotations

from typing import Any

from harness.data.records import Message

CHAT = "chat"
INSTRUCTION = "instruction"
PROMPT_COMPLETION = "prompt_completion"
TEXT = "text"
FORMATS = (CHAT, INSTRUCTION, PROMPT_COMPLETION, TEXT)
#: Aliases accepted by ``format=`` / ``--format``.
FORMAT_ALIASES = {"openai": CHAT, "messages": CHAT, "alpaca": INSTRUCTION,
                  "prompt-completion": PROMPT_COMPLETION, "completion": PROMPT_COMPLETION,
                  "plain": TEXT}

INSTRUCTION_SEPARATOR = "\n\n"


def normalise_format(name: str) -> str:
    """The canonical format name for ``name`` or an alias; ``ValueError`` if unknown."""
    key = name.strip().lower().replace("/", "_")
    key = FORMAT_ALIASES.get(key, key)
    if key not in FORMATS:
        raise ValueError(f"unknown format {name!r} (expected one of {', '.join(FORMATS)})")
    return key


def detect_format(record: Any) -> str | None:
    """Which format a record is in, judged by its keys (``None`` when none fits)."""
    if not isinstance(record, dict):
        return None
    if "messages" in record:
        return CHAT
    if "instruction" in record or "output" in record:
        return INSTRUCTION
    if "prompt" in record or "completion" in record:
        return PROMPT_COMPLETION
    if "text" in record:
        return TEXT
    return None


def join_instruction(instruction: str, input_text: str | None) -> str:
    """The user turn for an instruction record: instruction, blank line, input (if any)."""
    if input_text:
        return f"{instruction}{INSTRUCTION_SEPARATOR}{input_text}"
    return instruction


def split_instruction(user_text: str) -> tuple[str, str]:
    """Inverse of :func:`join_instruction`: split at the first blank line with text after it."""
    head, sep, tail = user_text.partition(INSTRUCTION_SEPARATOR)
    if sep and tail:
        return head, tail
    return user_text, ""


def _copy_messages(messages: list[Message]) -> list[Message]:
    """New message dicts (so editing an example never edits the record it came from)."""
    return [dict(message) for message in messages]


def to_messages(record: dict[str, Any], fmt: str, system: str | None = None) -> list[Message]:
    """Convert a checked record of format ``fmt`` to chat messages.

    ``system`` is added as the first message when the record has no system prompt of its own.
    """
    if fmt == CHAT:
        messages = _copy_messages(record["messages"])
    elif fmt == INSTRUCTION:
        messages = []
        if isinstance(record.get("system"), str) and record["system"].strip():
            messages.append({"role": "system", "content": record["system"]})
        messages.append({"role": "user", "content": join_instruction(record.get("instruction", ""),
                                                                      record.get("input"))})
        messages.append({"role": "assistant", "content": record["output"]})
    elif fmt == PROMPT_COMPLETION:
        prompt, completion = record["prompt"], record["completion"]
        if isinstance(prompt, list):
            messages = _copy_messages(prompt) + _copy_messages(completion)
        else:
            messages = [{"role": "user", "content": prompt},
                        {"role": "assistant", "content": completion}]
    elif fmt == TEXT:
        messages = [{"role": "assistant", "content": record["text"]}]
    else:
        raise ValueError(f"unknown format {fmt!r}")
    if system is not None and not any(m.get("role") == "system" for m in messages):
        messages.insert(0, {"role": "system", "content": system})
    return messages


def instruction_problem(messages: list[Message]) -> str | None:
    """Why ``messages`` cannot become one instruction record (``None`` when it can)."""
    roles = [m.get("role") for m in messages]
    extra = sorted({k for m in messages for k in m if k not in ("role", "content")})
    if extra:
        return f"message keys {', '.join(extra)} have no place in instruction form"
    if roles in (["user", "assistant"], ["system", "user", "assistant"]):
        return None
    return ("only a single exchange ([system,] user, assistant) converts to instruction form; "
            f"got roles {', '.join(str(r) for r in roles)}")


def from_messages(messages: list[Message], to: str) -> dict[str, Any]:
    """Convert chat messages to a record of format ``to`` ("chat" or "instruction").

    Raises ``ValueError`` (with the reason) when the conversation does not fit the target.
    """
    to = normalise_format(to)
    if to == CHAT:
        return {"messages": _copy_messages(messages)}
    if to == INSTRUCTION:
        problem = instruction_problem(messages)
        if problem:
            raise ValueError(problem)
        record: dict[str, Any] = {}
        if messages[0]["role"] == "system":
            record["system"] = messages[0]["content"]
        instruction, input_text = split_instruction(messages[-2]["content"])
        record.update(instruction=instruction, input=input_text, output=messages[-1]["content"])
        return record
    raise ValueError(f"cannot convert to {to!r}: expected 'chat' or 'instruction'")

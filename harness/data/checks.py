"""Per-record checks (pure): the OpenAI chat-format checks plus the harness's own.

The chat checks reproduce OpenAI's "Data preparation and analysis for chat model
fine-tuning" checker: record not an object, missing ``messages`` list, message not an
object, missing ``role`` / ``content``, unrecognised key, unrecognised role, content of the
wrong type or missing, no assistant message. Added here: empty assistant reply, system
message not first, ``weight`` not 0 / 1, and field checks for the other formats.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from harness.data.findings import ERROR, Finding
from harness.data.formats import (
    CHAT,
    INSTRUCTION,
    PROMPT_COMPLETION,
    TEXT,
    detect_format,
    join_instruction,
)

#: Deeper JSON nesting than this is refused (no chat record needs it; it would exhaust recursion).
MAX_NESTING = 64
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
ALLOWED_MESSAGE_KEYS = ("role", "content", "name", "function_call", "weight")
ALLOWED_ROLES = ("system", "user", "assistant", "function")


@dataclass(frozen=True)
class Where:
    """Location of the record being checked."""

    path: str
    line: int
    unit: str = "line"

    def error(self, code: str, message: str, field: str | None = None) -> Finding:
        return Finding(ERROR, code, message, path=self.path, line=self.line, field=field,
                       unit=self.unit)


def type_name(value: Any) -> str:
    """The JSON name of a Python value's type (for messages like "got number")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def structure_problem(value: Any) -> str | None:
    """Why a parsed value cannot be processed safely (too deep, lone surrogate), else ``None``."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_NESTING:
            return f"JSON nested deeper than {MAX_NESTING} levels"
        if isinstance(item, str):
            if _LONE_SURROGATE.search(item):
                return "invalid Unicode: lone surrogate escape in a string"
        elif isinstance(item, dict):
            stack.extend((k, depth + 1) for k in item)
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return None


def check_record(record: Any, where: Where, fmt: str | None = None) -> tuple[str | None,
                                                                             list[Finding]]:
    """Check one raw record; returns its format (``None`` if unknown) and every problem found."""
    problem = structure_problem(record)
    if problem:
        return None, [where.error("invalid_json", problem)]
    if not isinstance(record, dict):
        return None, [where.error("data_type",
                                  f"not a JSON object (got {type_name(record)})")]
    findings: list[Finding] = []
    fmt = fmt or detect_format(record)
    if fmt is None:
        keys = ", ".join(repr(k) for k in list(record)[:8]) or "none"
        return None, [where.error(
            "unknown_format", "missing 'messages' list (no chat, instruction, "
            f"prompt/completion or text fields; keys: {keys})", "messages")]
    if fmt == CHAT:
        findings += check_messages(record.get("messages"), where, "messages")
    elif fmt == INSTRUCTION:
        findings += _check_instruction(record, where)
    elif fmt == PROMPT_COMPLETION:
        findings += _check_prompt_completion(record, where)
    elif fmt == TEXT:
        findings += _check_string(record, "text", where, required=True, nonempty=True)
    findings += _check_optional_fields(record, where)
    return fmt, findings


def check_messages(messages: Any, where: Where, field: str = "messages",
                   require_assistant: bool = True) -> list[Finding]:
    """The OpenAI checks on one message list, plus empty reply and system position."""
    if messages is None:
        return [where.error("missing_messages_list", "missing 'messages' list", field)]
    if not isinstance(messages, list):
        return [where.error("missing_messages_list",
                            f"'messages' must be a list (got {type_name(messages)})", field)]
    if not messages:
        return [where.error("missing_messages_list", "'messages' list is empty", field)]
    findings: list[Finding] = []
    for i, message in enumerate(messages):
        findings += _check_message(message, i, where, field)
    roles = [m.get("role") if isinstance(m, dict) else None for m in messages]
    if require_assistant and "assistant" not in roles:
        findings.append(where.error("example_missing_assistant_message",
                                    "no assistant message", field))
    for i, role in enumerate(roles):
        if role == "system" and i > 0:
            findings.append(where.error(
                "system_not_first", f"system message at position {i}; it must come first",
                f"{field}[{i}].role"))
    return findings


def _check_message(message: Any, i: int, where: Where, field: str) -> list[Finding]:
    base = f"{field}[{i}]"
    if not isinstance(message, dict):
        return [where.error("message_not_object",
                            f"message is not an object (got {type_name(message)})", base)]
    findings = []
    for key in ("role", "content"):
        if key not in message:
            findings.append(where.error("message_missing_key", f"missing key {key!r}",
                                        f"{base}.{key}"))
    for key in message:
        if key == "metadata":
            findings.append(where.error(
                "metadata_position", "'metadata' belongs to the record (a top-level key next to "
                f"'{field}'), not to a message", f"{base}.metadata"))
        elif key not in ALLOWED_MESSAGE_KEYS:
            findings.append(where.error(
                "message_unrecognized_key", f"unrecognised key {key!r} (allowed: "
                f"{', '.join(ALLOWED_MESSAGE_KEYS)})", f"{base}.{key}"))
    role = message.get("role")
    if "role" in message and role not in ALLOWED_ROLES:
        shown = repr(role) if isinstance(role, str) else f"of type {type_name(role)}"
        findings.append(where.error(
            "unrecognized_role", f"unrecognised role {shown} (expected one of "
            f"{', '.join(ALLOWED_ROLES)})", f"{base}.role"))
    if "content" in message:
        findings += _check_content(message, role, where, f"{base}.content")
    if "weight" in message:
        if message["weight"] not in (0, 1) or isinstance(message["weight"], bool):
            findings.append(where.error("weight", f"weight must be 0 or 1 (got "
                                        f"{message['weight']!r})", f"{base}.weight"))
        elif role != "assistant":
            findings.append(where.error("weight", "weight is only allowed on assistant "
                                        "messages", f"{base}.weight"))
    if "name" in message and not isinstance(message["name"], str):
        findings.append(where.error("name_type", "name must be a string (got "
                                    f"{type_name(message['name'])})", f"{base}.name"))
    return findings


def _check_content(message: dict, role: Any, where: Where, field: str) -> list[Finding]:
    content = message["content"]
    function_call = message.get("function_call")
    if content is None and function_call:
        return []
    if not isinstance(content, str):
        return [where.error("content_type", f"content must be a string (got "
                            f"{type_name(content)})", field)]
    if not content.strip() and not function_call:
        if role == "assistant":
            return [where.error("empty_assistant_reply", "empty assistant reply", field)]
        return [where.error("missing_content", "empty content", field)]
    return []


def _check_string(record: dict, key: str, where: Where, *, required: bool,
                  nonempty: bool = False, allow_null: bool = False) -> list[Finding]:
    if key not in record:
        return [where.error("missing_field", f"missing field {key!r}", key)] if required else []
    value = record[key]
    if value is None and allow_null:
        return []
    if not isinstance(value, str):
        return [where.error("content_type", f"{key} must be a string (got {type_name(value)})",
                            key)]
    if nonempty and not value.strip():
        return [where.error("empty_field", f"empty {key}", key)]
    return []


def _check_instruction(record: dict, where: Where) -> list[Finding]:
    findings = _check_string(record, "instruction", where, required=True)
    findings += _check_string(record, "input", where, required=False, allow_null=True)
    findings += _check_string(record, "system", where, required=False, allow_null=True)
    if not findings and not join_instruction(record["instruction"], record.get("input")).strip():
        findings.append(where.error("empty_field", "empty instruction and input: the user turn "
                                    "would be empty", "instruction"))
    output = _check_string(record, "output", where, required=True, nonempty=True)
    for finding in output:
        if finding.code == "empty_field":
            finding = where.error("empty_assistant_reply", "empty assistant reply (output)",
                                  "output")
        findings.append(finding)
    return findings


def _check_prompt_completion(record: dict, where: Where) -> list[Finding]:
    prompt, completion = record.get("prompt"), record.get("completion")
    if isinstance(prompt, list) or isinstance(completion, list):
        if not (isinstance(prompt, list) and isinstance(completion, list)):
            return [where.error("content_type", "prompt and completion must both be strings "
                                "or both be message lists", "completion")]
        findings = check_messages(prompt, where, "prompt", require_assistant=False)
        findings += check_messages(completion, where, "completion")
        return findings
    findings = _check_string(record, "prompt", where, required=True, nonempty=True)
    completion_findings = _check_string(record, "completion", where, required=True,
                                        nonempty=True)
    for finding in completion_findings:
        if finding.code == "empty_field":
            finding = where.error("empty_assistant_reply", "empty assistant reply (completion)",
                                  "completion")
        findings.append(finding)
    return findings


METADATA_VALUE_TYPES = (str, int, float, bool)


def check_metadata(value: Any, where: Where) -> list[Finding]:
    """``metadata``: an object of named scalar values (string, number, boolean) that slices read."""
    if not isinstance(value, dict):
        return [where.error("metadata_type", f"metadata must be an object like {{\"category\": \"kitchen\"}} "
                            f"(got {type_name(value)})", "metadata")]
    findings = []
    for key, item in value.items():
        if not key.strip():
            findings.append(where.error("metadata_type", "metadata has an empty field name", "metadata"))
        elif item is not None and not isinstance(item, METADATA_VALUE_TYPES):
            findings.append(where.error("metadata_type", f"metadata.{key} must be a string, number or "
                                        f"boolean (got {type_name(item)})", f"metadata.{key}"))
    return findings


def _check_optional_fields(record: dict, where: Where) -> list[Finding]:
    findings = check_metadata(record["metadata"], where) if "metadata" in record else []
    if "id" in record and (isinstance(record["id"], bool)
                           or not isinstance(record["id"], (str, int))
                           or (isinstance(record["id"], str) and not record["id"].strip())):
        findings.append(where.error("id_type", "id must be a non-empty string or an integer "
                                    f"(got {type_name(record['id'])})", "id"))
    if "label" in record and (record["label"] is None
                              or not isinstance(record["label"], (str, int, bool))):
        findings.append(where.error("label_type", "label must be a string, number or boolean "
                                    f"(got {type_name(record['label'])})", "label"))
    return findings

"""Validation of a chat completions request body, with the service's 400 messages.

Pure: `validate()` returns nothing and raises `WireError` for the first problem found,
worded as the service words it ("Missing required parameter: 'messages'.", ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._wire import WireError, invalid_request

__all__ = ["ROLES", "validate"]

ROLES = ("system", "assistant", "user", "function", "tool", "developer")
_NEEDS_CONTENT = ("system", "user", "developer", "tool")


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _wrong_type(param: str, expected: str, value: Any) -> WireError:
    return invalid_request(
        f"Invalid type for '{param}': expected {expected}, but got {_type_name(value)} instead.",
        param=param,
        code="invalid_type",
    )


def _missing(param: str) -> WireError:
    return invalid_request(
        f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter"
    )


def _check_content(i: int, role: str, message: Mapping[str, Any]) -> None:
    param = f"messages[{i}].content"
    if "content" not in message or message["content"] is None:
        if role in _NEEDS_CONTENT:
            raise _missing(param)
        return
    content = message["content"]
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise _wrong_type(param, "one of a string or array of objects", content)
    for j, part in enumerate(content):
        where = f"{param}[{j}]"
        if not isinstance(part, dict):
            raise _wrong_type(where, "an object", part)
        if "type" not in part:
            raise _missing(f"{where}.type")
        if part["type"] == "text" and not isinstance(part.get("text"), str):
            raise _wrong_type(f"{where}.text", "a string", part.get("text"))


def _check_messages(body: Mapping[str, Any]) -> None:
    if "messages" not in body:
        raise _missing("messages")
    messages = body["messages"]
    if not isinstance(messages, list):
        raise _wrong_type("messages", "an array", messages)
    if not messages:
        raise invalid_request(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, "
            "but got an empty array instead.",
            param="messages",
            code="empty_array",
        )
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _wrong_type(f"messages[{i}]", "an object", message)
        if "role" not in message:
            raise _missing(f"messages[{i}].role")
        role = message["role"]
        if role not in ROLES:
            supported = ", ".join(f"'{r}'" for r in ROLES[:-1]) + f", and '{ROLES[-1]}'"
            raise invalid_request(
                f"Invalid value: '{role}'. Supported values are: {supported}.",
                param=f"messages[{i}].role",
                code="invalid_value",
            )
        _check_content(i, str(role), message)
        if role == "tool" and not isinstance(message.get("tool_call_id"), str):
            raise _missing(f"messages[{i}].tool_call_id")


def _check_number(
    body: Mapping[str, Any], name: str, low: float, high: float | None, integer: bool
) -> None:
    value = body.get(name)
    if value is None:
        return
    kind = "integer" if integer else "decimal"
    ok = isinstance(value, int) if integer else isinstance(value, int | float)
    if not ok or isinstance(value, bool):
        raise _wrong_type(name, "an integer" if integer else "a decimal", value)
    if value < low:
        raise invalid_request(
            f"Invalid '{name}': {kind} below minimum value. Expected a value >= {low:g}, "
            f"but got {value} instead.",
            param=name,
            code=f"{kind}_below_min_value",
        )
    if high is not None and value > high:
        raise invalid_request(
            f"Invalid '{name}': {kind} above maximum value. Expected a value <= {high:g}, "
            f"but got {value} instead.",
            param=name,
            code=f"{kind}_above_max_value",
        )


def validate(body: Any) -> None:
    """Raise `WireError` (400) for a body the service would refuse."""
    if not isinstance(body, dict):
        raise _wrong_type("body", "an object", body)
    _check_messages(body)
    _check_number(body, "temperature", 0, 2, integer=False)
    _check_number(body, "top_p", 0, 1, integer=False)
    _check_number(body, "presence_penalty", -2, 2, integer=False)
    _check_number(body, "frequency_penalty", -2, 2, integer=False)
    _check_number(body, "max_tokens", 1, None, integer=True)
    _check_number(body, "max_completion_tokens", 1, None, integer=True)
    _check_number(body, "seed", -(2**63), 2**63 - 1, integer=True)
    _check_number(body, "n", 1, 1, integer=True)  # the emulator answers one choice
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _wrong_type("stream", "a boolean", stream)
    options = body.get("stream_options")
    if options is not None:
        if not stream:
            raise invalid_request(
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                param="stream_options",
                code="invalid_value",
            )
        if not isinstance(options, dict):
            raise _wrong_type("stream_options", "an object", options)
        include = options.get("include_usage")
        if include is not None and not isinstance(include, bool):
            raise _wrong_type("stream_options.include_usage", "a boolean", include)

"""Validation of `POST /api/jobs` bodies and of group and connection names.

`parse_job_request` turns the decoded JSON body into a frozen `JobRequest` or raises
`ValidationError(field, reason)` naming the first offending field precisely (e.g.
`messages[2].content`), so the HTTP layer can answer 400 with it. No I/O here.
"""

from __future__ import annotations

import math
import re

from ..errors import ValidationError
from ._model import ChatMessage, JobRequest, Limits, is_number, shape_message
from ._profiles import Profile, check_profile_temperature

__all__ = ["parse_job_request", "validate_connection_id", "validate_group_name"]

_FIELDS = frozenset(
    ("prompt", "messages", "system", "maxTokens", "temperature", "groupName", "connectionId")
)
_GROUP_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_CONNECTION_RE = re.compile(r"[A-Za-z0-9_-]{1,128}")
# C0 controls except \t \n \r, plus lone surrogates (JSON "\ud800" decodes to one; it cannot
# be encoded as UTF-8, so letting it through would fail later, far from the caller).
_BAD_CHAR_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")


def _check_text(field: str, value: object, max_chars: int, *, required: bool = True) -> str:
    if not isinstance(value, str):
        raise ValidationError(field, "must be a string")
    if required and not value.strip():
        raise ValidationError(field, "must not be empty")
    if len(value) > max_chars:
        raise ValidationError(field, f"must be at most {max_chars} characters")
    bad = _BAD_CHAR_RE.search(value)
    if bad is not None:
        raise ValidationError(
            field, f"contains a forbidden character U+{ord(bad.group()):04X} at {bad.start()}"
        )
    return value


def validate_group_name(name: object, field: str = "groupName") -> str:
    """1-64 of [A-Za-z0-9_-], starting with a letter or digit."""
    if not isinstance(name, str) or _GROUP_RE.fullmatch(name) is None:
        raise ValidationError(
            field, "must be 1-64 of A-Z a-z 0-9 _ - and start with a letter or digit"
        )
    return name


def validate_connection_id(cid: object, field: str = "connectionId") -> str:
    """1-128 of [A-Za-z0-9_-]."""
    if not isinstance(cid, str) or _CONNECTION_RE.fullmatch(cid) is None:
        raise ValidationError(field, "must be 1-128 of A-Z a-z 0-9 _ -")
    return cid


def _parse_messages(raw: object, limits: Limits) -> tuple[ChatMessage, ...]:
    if not isinstance(raw, list):
        raise ValidationError("messages", "must be a list of {role, content}")
    if not raw:
        raise ValidationError("messages", "must not be empty")
    if len(raw) > limits.messages_max:
        raise ValidationError("messages", f"must have at most {limits.messages_max} turns")
    turns: list[ChatMessage] = []
    for i, item in enumerate(raw):
        # Unknown keys first, then the shape a stored job is also checked for, then sizes.
        for key in item if isinstance(item, dict) else ():
            if key not in ("role", "content"):
                raise ValidationError(f"messages[{i}].{key}", "unknown field")
        turn = shape_message(item, i)
        cap = limits.system_max_chars if turn.role == "system" else limits.prompt_max_chars
        _check_text(f"messages[{i}].content", turn.content, cap)
        turns.append(turn)
    if turns[-1].role != "user":
        raise ValidationError(f"messages[{len(turns) - 1}].role", "the last turn must be user")
    return tuple(turns)


def _parse_max_tokens(raw: object, limits: Limits) -> int:
    # bool is an int subclass in Python; JSON true is not a token count.
    if type(raw) is not int:
        raise ValidationError("maxTokens", "must be an integer")
    if not 1 <= raw <= limits.max_tokens_limit:
        raise ValidationError("maxTokens", f"must be between 1 and {limits.max_tokens_limit}")
    return raw


def _parse_temperature(raw: object, profile: Profile) -> float:
    if not is_number(raw):
        raise ValidationError("temperature", "must be a number")
    assert isinstance(raw, int | float)
    value = float(raw)
    if not math.isfinite(value) or not 0.0 <= value <= 2.0:
        raise ValidationError("temperature", "must be between 0 and 2")
    check_profile_temperature(value, profile)
    return value


def parse_job_request(body: object, limits: Limits, profile: Profile = "chat") -> JobRequest:
    """Validate a decoded JSON body; raise `ValidationError` on the first problem found.

    JSON null for an optional field means absent; an empty or blank `system` too.
    """
    if not isinstance(body, dict):
        raise ValidationError("body", "must be a JSON object")
    for key in body:
        if key not in _FIELDS:
            raise ValidationError(str(key), "unknown field")
    value = {k: v for k, v in body.items() if v is not None}

    prompt: str | None = None
    messages: tuple[ChatMessage, ...] | None = None
    if "prompt" in value and "messages" in value:
        raise ValidationError("messages", "give either prompt or messages, not both")
    if "prompt" in value:
        prompt = _check_text("prompt", value["prompt"], limits.prompt_max_chars)
    elif "messages" in value:
        messages = _parse_messages(value["messages"], limits)
    else:
        raise ValidationError("prompt", "one of prompt or messages is required")

    system: str | None = None
    if "system" in value:
        system = _check_text("system", value["system"], limits.system_max_chars, required=False)
        if not system.strip():
            system = None
    if system is not None and messages is not None and any(m.role == "system" for m in messages):
        raise ValidationError("system", "not allowed when messages has a system turn")

    max_tokens = _parse_max_tokens(value["maxTokens"], limits) if "maxTokens" in value else None
    temperature = (
        _parse_temperature(value["temperature"], profile) if "temperature" in value else None
    )

    if "groupName" in value and "connectionId" in value:
        raise ValidationError("connectionId", "give at most one of groupName or connectionId")
    group = validate_group_name(value["groupName"]) if "groupName" in value else None
    connection = validate_connection_id(value["connectionId"]) if "connectionId" in value else None
    return JobRequest(
        prompt=prompt,
        messages=messages,
        system=system,
        max_tokens=max_tokens,
        temperature=temperature,
        group_name=group,
        connection_id=connection,
    )

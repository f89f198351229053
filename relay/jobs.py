"""The job model: what a caller may ask for, validated once, and how it maps to a model request.

`parse_job_request` turns the decoded JSON body of `POST /api/jobs` into a frozen `JobRequest`
or raises `ValidationError(field, reason)` naming the first offending field precisely (e.g.
`messages[2].content`), so the HTTP layer can answer 400 with it. `build_chat_request` turns a
job into the keyword arguments of `chat.completions.create` for the configured model profile.
No I/O here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from .errors import ValidationError

__all__ = [
    "PROFILE_FIELDS",
    "ChatMessage",
    "JobRequest",
    "Limits",
    "Profile",
    "Role",
    "Target",
    "build_chat_request",
    "parse_job_request",
    "validate_connection_id",
    "validate_group_name",
]

Role = Literal["system", "user", "assistant"]
Profile = Literal["chat", "reasoning"]
TargetKind = Literal["user", "group", "connection"]

_ROLES: tuple[Role, ...] = ("system", "user", "assistant")
_FIELDS = frozenset(
    ("prompt", "messages", "system", "maxTokens", "temperature", "groupName", "connectionId")
)
_GROUP_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_CONNECTION_RE = re.compile(r"[A-Za-z0-9_-]{1,128}")
# C0 controls except \t \n \r, plus lone surrogates (JSON "\ud800" decodes to one; it cannot
# be encoded as UTF-8, so letting it through would fail later, far from the caller).
_BAD_CHAR_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")

# Which job option becomes which request field, per profile. None: the profile does not send
# it (reasoning models accept only their default temperature, 1, so it is left out).
PROFILE_FIELDS: Mapping[Profile, Mapping[str, str | None]] = {
    "chat": {"max_tokens": "max_tokens", "temperature": "temperature"},
    "reasoning": {"max_tokens": "max_completion_tokens", "temperature": None},
}
_REASONING_TEMPERATURE = 1.0


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True)
class Target:
    """Where a job's messages go through SignalR: a user id, a group name or a connection id."""

    kind: TargetKind
    id: str


class _LimitSettings(Protocol):
    @property
    def prompt_max_chars(self) -> int: ...
    @property
    def system_max_chars(self) -> int: ...
    @property
    def messages_max(self) -> int: ...
    @property
    def max_tokens_limit(self) -> int: ...


@dataclass(frozen=True)
class Limits:
    prompt_max_chars: int = 32000
    system_max_chars: int = 8000
    messages_max: int = 64
    max_tokens_limit: int = 4096

    @classmethod
    def from_settings(cls, settings: _LimitSettings) -> Limits:
        return cls(
            prompt_max_chars=settings.prompt_max_chars,
            system_max_chars=settings.system_max_chars,
            messages_max=settings.messages_max,
            max_tokens_limit=settings.max_tokens_limit,
        )


@dataclass(frozen=True)
class JobRequest:
    prompt: str | None
    messages: tuple[ChatMessage, ...] | None
    system: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    group_name: str | None = None
    connection_id: str | None = None

    def target_for(self, owner: str) -> Target:
        """The job's SignalR target: its group or connection if given, else its owner."""
        if self.group_name is not None:
            return Target("group", self.group_name)
        if self.connection_id is not None:
            return Target("connection", self.connection_id)
        return Target("user", owner)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe camelCase form; absent options are left out."""
        out: dict[str, Any] = {}
        if self.prompt is not None:
            out["prompt"] = self.prompt
        if self.messages is not None:
            out["messages"] = [{"role": m.role, "content": m.content} for m in self.messages]
        optional = {
            "system": self.system,
            "maxTokens": self.max_tokens,
            "temperature": self.temperature,
            "groupName": self.group_name,
            "connectionId": self.connection_id,
        }
        out.update({k: v for k, v in optional.items() if v is not None})
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobRequest:
        """Inverse of `to_dict` for stored or queued jobs (already validated when accepted).

        Checks shapes only (no size limits, which may have changed since); malformed data
        raises `ValidationError` rather than building a broken job.
        """
        if not isinstance(data, Mapping):
            raise ValidationError("body", "must be a JSON object")
        messages = data.get("messages")
        turns: tuple[ChatMessage, ...] | None = None
        if messages is not None:
            if not isinstance(messages, list):
                raise ValidationError("messages", "must be a list")
            turns = tuple(_shape_message(m, i) for i, m in enumerate(messages))
        max_tokens = data.get("maxTokens")
        temperature = data.get("temperature")
        if max_tokens is not None and (type(max_tokens) is not int):
            raise ValidationError("maxTokens", "must be an integer")
        if temperature is not None and not _is_number(temperature):
            raise ValidationError("temperature", "must be a number")
        return cls(
            prompt=_opt_str(data, "prompt"),
            messages=turns,
            system=_opt_str(data, "system"),
            max_tokens=max_tokens,
            temperature=float(temperature) if temperature is not None else None,
            group_name=_opt_str(data, "groupName"),
            connection_id=_opt_str(data, "connectionId"),
        )


def _opt_str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise ValidationError(key, "must be a string")
    return value


def _shape_message(raw: object, index: int) -> ChatMessage:
    where = f"messages[{index}]"
    if not isinstance(raw, Mapping):
        raise ValidationError(where, "must be an object with role and content")
    role, content = raw.get("role"), raw.get("content")
    if role not in _ROLES:
        raise ValidationError(f"{where}.role", "must be one of system, user, assistant")
    if not isinstance(content, str):
        raise ValidationError(f"{where}.content", "must be a string")
    return ChatMessage(role, content)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


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
        where = f"messages[{i}]"
        if not isinstance(item, dict):
            raise ValidationError(where, "must be an object with role and content")
        for key in item:
            if key not in ("role", "content"):
                raise ValidationError(f"{where}.{key}", "unknown field")
        role = item.get("role")
        if role not in _ROLES:
            raise ValidationError(f"{where}.role", "must be one of system, user, assistant")
        cap = limits.system_max_chars if role == "system" else limits.prompt_max_chars
        content = _check_text(f"{where}.content", item.get("content"), cap)
        turns.append(ChatMessage(role, content))
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
    if not _is_number(raw):
        raise ValidationError("temperature", "must be a number")
    assert isinstance(raw, int | float)
    value = float(raw)
    if not math.isfinite(value) or not 0.0 <= value <= 2.0:
        raise ValidationError("temperature", "must be between 0 and 2")
    _check_profile_temperature(value, profile)
    return value


def _check_profile_temperature(value: float | None, profile: Profile) -> None:
    if profile == "reasoning" and value is not None and value != _REASONING_TEMPERATURE:
        raise ValidationError("temperature", "this model accepts only temperature 1")


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


def build_chat_request(
    job: JobRequest, profile: Profile, default_max_tokens: int
) -> dict[str, Any]:
    """Keyword arguments for `chat.completions.create`, without `model` and `stream`."""
    _check_profile_temperature(job.temperature, profile)
    fields = PROFILE_FIELDS[profile]
    messages: list[dict[str, str]] = []
    if job.system is not None:
        messages.append({"role": "system", "content": job.system})
    if job.messages is not None:
        messages.extend({"role": m.role, "content": m.content} for m in job.messages)
    elif job.prompt is not None:
        messages.append({"role": "user", "content": job.prompt})
    else:
        raise ValidationError("prompt", "one of prompt or messages is required")
    request: dict[str, Any] = {"messages": messages}
    tokens_field = fields["max_tokens"]
    if tokens_field is not None:
        request[tokens_field] = job.max_tokens if job.max_tokens is not None else default_max_tokens
    temperature_field = fields["temperature"]
    if temperature_field is not None and job.temperature is not None:
        request[temperature_field] = job.temperature
    return request

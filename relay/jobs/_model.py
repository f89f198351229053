"""The job model: a validated job request, its chat turns, its SignalR target and size limits.

`JobRequest.to_dict`/`from_dict` round-trip a job through the store and the queue;
`from_dict` checks shapes only, since the job was validated in full when it was accepted
(relay.jobs._validate). No I/O here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal, Protocol

from ..errors import ValidationError

__all__ = [
    "ROLES",
    "ChatMessage",
    "JobRequest",
    "Limits",
    "Role",
    "Target",
    "TargetKind",
    "is_number",
    "shape_message",
]

Role = Literal["system", "user", "assistant"]
TargetKind = Literal["user", "group", "connection"]

ROLES: tuple[Role, ...] = ("system", "user", "assistant")


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
        # Every field has a setting of the same name (_LimitSettings says which).
        return cls(**{f.name: getattr(settings, f.name) for f in fields(cls)})


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
            turns = tuple(shape_message(m, i) for i, m in enumerate(messages))
        max_tokens = data.get("maxTokens")
        temperature = data.get("temperature")
        if max_tokens is not None and (type(max_tokens) is not int):
            raise ValidationError("maxTokens", "must be an integer")
        if temperature is not None and not is_number(temperature):
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


def shape_message(raw: object, index: int) -> ChatMessage:
    """`messages[index]` as a ChatMessage: an object with a known role and string content.

    Shape only: sizes, characters and unknown keys are the validator's (relay.jobs._validate).
    """
    where = f"messages[{index}]"
    if not isinstance(raw, Mapping):
        raise ValidationError(where, "must be an object with role and content")
    role, content = raw.get("role"), raw.get("content")
    if role not in ROLES:
        raise ValidationError(f"{where}.role", "must be one of system, user, assistant")
    if not isinstance(content, str):
        raise ValidationError(f"{where}.content", "must be a string")
    return ChatMessage(role, content)


def is_number(value: object) -> bool:
    """A JSON number: int or float, but not bool (an int subclass in Python)."""
    return isinstance(value, int | float) and not isinstance(value, bool)

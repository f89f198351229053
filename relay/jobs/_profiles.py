"""Model profiles: how a job becomes the keyword arguments of `chat.completions.create`.

A deployment is either a chat model or a reasoning model; they name the token limit
differently and reasoning models accept only their default temperature. No I/O here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from ..errors import ValidationError
from ._model import JobRequest

__all__ = ["PROFILE_FIELDS", "Profile", "build_chat_request", "check_profile_temperature"]

Profile = Literal["chat", "reasoning"]

# Which job option becomes which request field, per profile. None: the profile does not send
# it (reasoning models accept only their default temperature, 1, so it is left out).
PROFILE_FIELDS: Mapping[Profile, Mapping[str, str | None]] = {
    "chat": {"max_tokens": "max_tokens", "temperature": "temperature"},
    "reasoning": {"max_tokens": "max_completion_tokens", "temperature": None},
}
_REASONING_TEMPERATURE = 1.0


def check_profile_temperature(value: float | None, profile: Profile) -> None:
    """Refuse a temperature the profile's model would reject (reasoning: only 1)."""
    if profile == "reasoning" and value is not None and value != _REASONING_TEMPERATURE:
        raise ValidationError("temperature", "this model accepts only temperature 1")


def build_chat_request(
    job: JobRequest, profile: Profile, default_max_tokens: int
) -> dict[str, Any]:
    """Keyword arguments for `chat.completions.create`, without `model` and `stream`."""
    check_profile_temperature(job.temperature, profile)
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

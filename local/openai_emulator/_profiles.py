"""Model profiles (chat, reasoning) and the option rules each one enforces.

A deployment name maps to a profile; the profile decides the model name reported in
responses, the default time to first token, and which request options the service
rejects (as Azure does for o-series and GPT-5 models).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._wire import invalid_request

__all__ = ["CHAT", "DEFAULT_DEPLOYMENTS", "REASONING", "Profile", "check_options"]


@dataclass(frozen=True)
class Profile:
    name: str  # "chat" or "reasoning"
    model: str  # reported in every response's `model`
    ttft_ms: float  # default time to first token
    reasoning: bool = False
    reasoning_tokens: int = 0  # hidden tokens billed before the visible answer
    system_fingerprint: str | None = "fp_e1m0a7c3d5"


CHAT = Profile("chat", "gpt-4.1-mini-2025-04-14", ttft_ms=300.0)
REASONING = Profile(
    "reasoning",
    "gpt-5-mini-2025-08-07",
    ttft_ms=2000.0,
    reasoning=True,
    reasoning_tokens=32,
    system_fingerprint=None,
)
DEFAULT_DEPLOYMENTS: Mapping[str, Profile] = {"chat": CHAT, "reasoning": REASONING}

# Sampling options reasoning models refuse outright.
_REASONING_UNSUPPORTED = ("max_tokens", "top_p", "presence_penalty", "frequency_penalty")


def check_options(profile: Profile, body: Mapping[str, Any]) -> None:
    """Raise `WireError` (400) for options this profile's model does not take."""
    if not profile.reasoning:
        return
    for name in _REASONING_UNSUPPORTED:
        if body.get(name) is not None:
            hint = " Use 'max_completion_tokens' instead." if name == "max_tokens" else ""
            raise invalid_request(
                f"Unsupported parameter: '{name}' is not supported with this model.{hint}",
                param=name,
                code="unsupported_parameter",
            )
    temperature = body.get("temperature")
    if temperature is not None and temperature != 1:
        raise invalid_request(
            f"Unsupported value: 'temperature' does not support {temperature} with this "
            "model. Only the default (1) value is supported.",
            param="temperature",
            code="unsupported_value",
        )

"""Per-request control: the `[[emulator key=value ...]]` marker and the x-emulator header.

Pure parsing, no I/O. The marker is read from the last user message (that is all an
end-to-end test can steer through the app, which forwards only the messages); the
`x-emulator` header takes the same `key=value` words and overrides the marker's keys.
The marker is stripped from the text before the answer's seed is computed, so the
answer does not depend on how the request was steered.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["FAULTS", "Control", "ControlError", "find_marker", "parse_control", "strip_marker"]

_MARKER = re.compile(r"\[\[emulator(?P<body>[^\[\]]*)\]\]")
_STRIP = re.compile(r"[ \t]*\[\[emulator[^\[\]]*\]\][ \t]*")

# fault=NNN (any 4xx/5xx status) is accepted too.
FAULTS = ("stall", "cut", "content_filter", "prompt_filter")

_INT_KEYS = {"tokens": (0, 100_000), "times": (1, 1_000_000), "after": (0, 100_000),
             "burst": (1, 10_000), "reasoning_tokens": (0, 100_000)}  # fmt: skip
_FLOAT_KEYS = {"rate": (0.001, 1_000_000.0), "ttft_ms": (0.0, 600_000.0),
               "jitter": (0.0, 1.0), "seconds": (0.0, 3600.0),
               "retry_after": (0.0, 86_400.0)}  # fmt: skip


class ControlError(ValueError):
    """A marker or header the emulator cannot understand (answered with a 400)."""


@dataclass(frozen=True)
class Control:
    tokens: int | None = None
    rate: float | None = None
    ttft_ms: float | None = None
    jitter: float | None = None
    burst: int | None = None
    reasoning_tokens: int | None = None
    fault: str | None = None  # one of FAULTS or a status code as text
    times: int | None = None  # None: the fault applies to every request
    after: int = 0  # content deltas sent before a stream fault
    seconds: float = 30.0  # length of a stall
    retry_after: float = 1.0  # seconds, for 429

    @property
    def fault_status(self) -> int | None:
        return int(self.fault) if self.fault and self.fault.isdigit() else None


def strip_marker(text: str) -> str:
    """`text` without any emulator marker (and the blanks around it), ends stripped."""
    return _STRIP.sub(" ", text).strip() if "[[emulator" in text else text


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(p.get("text", ""))
            for p in content
            if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""


def find_marker(messages: Sequence[Any]) -> str:
    """The `key=value` words of the marker in the last user message ('' when none)."""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            found = _MARKER.search(_text_of(message.get("content")))
            return found.group("body").strip() if found else ""
    return ""


def _words(text: str, where: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for word in text.split():
        key, sep, value = word.partition("=")
        if not sep or not key or not value:
            raise ControlError(f"{where}: expected key=value, got {word!r}")
        out[key.lower()] = value
    return out


def _number(key: str, value: str, kind: type[int] | type[float]) -> int | float:
    bounds = _INT_KEYS.get(key) or _FLOAT_KEYS[key]
    try:
        number = kind(value)
    except ValueError:
        raise ControlError(f"{key} must be a number, got {value!r}") from None
    if not bounds[0] <= number <= bounds[1]:
        raise ControlError(f"{key} must be between {bounds[0]:g} and {bounds[1]:g}")
    return number


def parse_control(messages: Sequence[Any], headers: Mapping[str, str] | None = None) -> Control:
    """Merge the marker of the last user message with the `x-emulator` header."""
    raw = _words(find_marker(messages), "emulator marker")
    header = (headers or {}).get("x-emulator", "")
    raw.update(_words(header, "x-emulator header"))
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _INT_KEYS:
            values[key] = _number(key, value, int)
        elif key in _FLOAT_KEYS:
            values[key] = _number(key, value, float)
        elif key == "fault":
            fault = value.lower()
            if fault.isdigit():
                if not 400 <= int(fault) <= 599:
                    raise ControlError("fault status must be between 400 and 599")
            elif fault not in FAULTS:
                raise ControlError(f"unknown fault {value!r}: use a status or {FAULTS}")
            values[key] = fault
        else:
            raise ControlError(f"unknown emulator key {key!r}")
    return Control(**values)

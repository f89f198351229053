"""The SignalR JSON hub protocol, as pure functions: framing, handshake, messages, billing.

No I/O here. Every message on the wire is JSON followed by the record separator 0x1E
(HubProtocol.md); one transport frame may carry several messages, or part of one.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BILLING_UNIT_BYTES",
    "HANDSHAKE_OK",
    "PING",
    "RS",
    "HandshakeRequest",
    "ProtocolError",
    "billed_units",
    "close_message",
    "completion_error",
    "handshake_error",
    "invocation",
    "parse_handshake",
    "parse_message",
    "split_frames",
]

RS = "\x1e"
HANDSHAKE_OK = "{}" + RS
PING = '{"type":6}' + RS
# Billing: one message is counted per 2 KB of outbound payload (notes/signalr.md).
BILLING_UNIT_BYTES = 2048

# Message types of HubProtocol.md.
INVOCATION = 1
STREAM_ITEM = 2
COMPLETION = 3
STREAM_INVOCATION = 4
CANCEL_INVOCATION = 5
PING_TYPE = 6
CLOSE = 7


class ProtocolError(Exception):
    """The peer sent something the JSON hub protocol does not allow."""


@dataclass(frozen=True)
class HandshakeRequest:
    protocol: str
    version: int


def split_frames(buffer: str) -> tuple[list[str], str]:
    """Split `buffer` into complete messages (separator removed) and the unfinished rest."""
    if RS not in buffer:
        return [], buffer
    *complete, rest = buffer.split(RS)
    return complete, rest


def parse_handshake(text: str) -> HandshakeRequest:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ProtocolError("handshake is not valid JSON") from exc
    if not isinstance(value, dict):
        raise ProtocolError("handshake must be a JSON object")
    protocol = value.get("protocol")
    version = value.get("version")
    if not isinstance(protocol, str) or not isinstance(version, int) or isinstance(version, bool):
        raise ProtocolError("handshake needs a string 'protocol' and an integer 'version'")
    return HandshakeRequest(protocol, version)


def handshake_error(message: str) -> str:
    return json.dumps({"error": message}, separators=(",", ":")) + RS


def parse_message(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ProtocolError("message is not valid JSON") from exc
    if not isinstance(value, dict) or not isinstance(value.get("type"), int):
        raise ProtocolError("message must be a JSON object with an integer 'type'")
    return value


def invocation(target: str, arguments: list[Any]) -> str:
    """A non-blocking invocation (no invocationId), the only thing the service sends."""
    body = {"type": INVOCATION, "target": target, "arguments": arguments}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False) + RS


def completion_error(invocation_id: str, error: str) -> str:
    body = {"type": COMPLETION, "invocationId": invocation_id, "error": error}
    return json.dumps(body, separators=(",", ":")) + RS


def close_message(error: str | None = None, allow_reconnect: bool = False) -> str:
    body: dict[str, Any] = {"type": CLOSE}
    if error:
        body["error"] = error
    if allow_reconnect:
        body["allowReconnect"] = True
    return json.dumps(body, separators=(",", ":")) + RS


def billed_units(size: int) -> int:
    """Billed messages for one outbound message of `size` bytes: ceil(size / 2 KB), at least 1."""
    return max(1, math.ceil(size / BILLING_UNIT_BYTES))

"""The host's HTTP/1.1 protocol: uvicorn's h11 protocol whose protocol-level refusals carry
the app's JSON error body instead of uvicorn's plain text.

A request h11 cannot parse (a malformed request line or header, an unsupported
Transfer-Encoding, a head larger than h11's buffer) never reaches the ASGI app: uvicorn
answers it itself, from `send_400_response`, with `text/plain` "Invalid HTTP request
received.". Every bad input must get a 4xx with `{"error": {"code", "message"}}` (issue 9),
so this subclass answers the same refusal with that shape. The status follows h11's hint
(431 for an over-long head) but stays a 4xx: h11 hints 501 for an unknown
Transfer-Encoding, and bad input never gets a 5xx here.
"""

from __future__ import annotations

import json
import sys

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["JsonErrorH11Protocol", "protocol_error_body"]

_CODES = {400: "bad_request", 431: "request_header_fields_too_large"}
_REASONS = {400: b"Bad Request", 431: b"Request Header Fields Too Large"}


def protocol_error_body(status: int) -> bytes:
    """The JSON error body of a request refused before it reached the app."""
    message = (
        "request head too large"
        if status == 431
        else "malformed HTTP request (request line, header or framing)"
    )
    return json.dumps({"error": {"code": _CODES[status], "message": message}}).encode()


class JsonErrorH11Protocol(H11Protocol):
    """`H11Protocol` with JSON protocol-error answers; everything else is uvicorn's."""

    def send_400_response(self, msg: str) -> None:
        # uvicorn calls this from inside `except h11.RemoteProtocolError`, so the error (and
        # its status hint) is the exception being handled.
        exc = sys.exc_info()[1]
        hint = exc.error_status_hint if isinstance(exc, h11.RemoteProtocolError) else 400
        status = hint if hint in _CODES else 400
        body = protocol_error_body(status)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode("ascii")),
            (b"connection", b"close"),
        ]
        try:
            output = self.conn.send(h11.Response(status_code=status, headers=headers,
                                                 reason=_REASONS[status]))  # fmt: skip
            output += self.conn.send(h11.Data(data=body)) or b""
            output += self.conn.send(h11.EndOfMessage()) or b""
        except h11.LocalProtocolError:
            # A response had already started on this connection (h11 can fail mid-request
            # body): nothing well-formed can be sent any more; close as uvicorn would.
            output = None
        if output:
            self.transport.write(output)
        self.transport.close()

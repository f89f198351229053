"""The one place where openai, httpx2 and azure-core exceptions become `LLMError`s.

Messages are ours: the service's own error text may quote the request, so it is never copied;
only the HTTP status and a short error code appear.
"""

from __future__ import annotations

import email.utils
import re
import ssl
import time
from collections.abc import Mapping
from typing import Any

import anyio
import httpx2
import openai
from azure.core.exceptions import AzureError

from ..errors import (
    LLMContentFiltered,
    LLMError,
    LLMRateLimited,
    LLMRequestRejected,
    LLMUnavailable,
)
from ._sse import MalformedChunk, StreamErrorEvent

__all__ = ["FOREIGN_ERRORS", "map_llm_error", "retry_after_seconds"]

# What `map_llm_error` knows how to map; anything else is a bug and propagates as is.
# ssl.SSLError and anyio.EndOfStream: TLS failures httpx2 leaves unmapped while reading a body
# (the SDK's own stream reader catches them too). MalformedChunk and StreamErrorEvent are
# raised by `_sse.read_chunk` for what the service sent inside a 200 stream.
FOREIGN_ERRORS: tuple[type[BaseException], ...] = (
    openai.OpenAIError,
    httpx2.HTTPError,
    ssl.SSLError,
    anyio.EndOfStream,
    AzureError,
    TimeoutError,
    MalformedChunk,
    StreamErrorEvent,
)

_CODE_RE = re.compile(r"[A-Za-z0-9_.\-]{1,64}\Z")
_FILTER_CODES = {"content_filter", "ResponsibleAIPolicyViolation"}


def retry_after_seconds(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Azure OpenAI's `retry-after-ms`, else `retry-after` (seconds or an HTTP date)."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            ms = float(raw_ms)
        except ValueError:
            ms = -1.0
        if ms >= 0:
            return ms / 1000.0
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    return max(0.0, seconds) if seconds == seconds else None


def _codes(body: object) -> set[str]:
    """Error codes found in an error body, including the nested `innererror.code`."""
    found: set[str] = set()
    if isinstance(body, dict):
        for key in ("code", "type"):
            value = body.get(key)
            if isinstance(value, str):
                found.add(value)
        inner: Any = body.get("innererror") or body.get("inner_error")
        if isinstance(inner, dict) and isinstance(inner.get("code"), str):
            found.add(inner["code"])
    return found


def map_llm_error(exc: BaseException) -> LLMError:
    """Map one foreign exception to the core's LLM error tree (callers raise it `from exc`)."""
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        code = exc.code if isinstance(exc.code, str) and _CODE_RE.match(exc.code) else None
        message = f"Azure OpenAI answered {status}" + (f" ({code})" if code else "")
        if status == 429:
            after = retry_after_seconds(exc.response.headers)
            return LLMRateLimited(message, status=status, retry_after=after)
        if status >= 500 or status == 408:
            return LLMUnavailable(message, status=status)
        if status == 400 and _codes(exc.body) & _FILTER_CODES:
            return LLMContentFiltered("the prompt was refused by the content filter", status=400)
        return LLMRequestRejected(message, status=status)
    if isinstance(exc, openai.APITimeoutError):
        return LLMUnavailable("Azure OpenAI timed out")
    if isinstance(
        exc, openai.APIConnectionError | httpx2.HTTPError | ssl.SSLError | anyio.EndOfStream
    ):
        return LLMUnavailable("could not reach Azure OpenAI, or the stream was cut")
    if isinstance(exc, TimeoutError):
        return LLMUnavailable("Azure OpenAI stalled: no data within the stall timeout")
    if isinstance(exc, AzureError):
        return LLMUnavailable("could not get a Microsoft Entra ID token for Azure OpenAI")
    if isinstance(exc, StreamErrorEvent | openai.APIError):  # an error event inside the stream
        code = exc.code if isinstance(exc.code, str) and _CODE_RE.match(exc.code) else None
        return LLMUnavailable(
            "Azure OpenAI reported an error mid-stream" + (f" ({code})" if code else "")
        )
    if isinstance(exc, MalformedChunk):
        return LLMUnavailable(str(exc))
    return LLMUnavailable(f"Azure OpenAI client error ({type(exc).__name__})")

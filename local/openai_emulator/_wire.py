"""The Azure OpenAI wire format: error bodies, completion objects, stream chunks, SSE.

Pure builders, no I/O. Shapes follow captured Azure responses: a stream opens with a
chunk whose `choices` is empty and whose `id`, `model` and `object` are blank, carrying
`prompt_filter_results`; every content chunk carries `content_filter_results`.
"""

from __future__ import annotations

import json
import secrets
import string
from typing import Any

__all__ = [
    "SAFE_FILTER",
    "WireError",
    "azure_error",
    "chunk",
    "completion",
    "filtered_results",
    "invalid_request",
    "new_completion_id",
    "prompt_filter_results",
    "prompt_filtered",
    "server_error",
    "sse",
    "usage",
]

_ALPHABET = string.ascii_letters + string.digits
_FILTER_DOC = "https://go.microsoft.com/fwlink/?linkid=2198766"
_SUPPORT = "https://go.microsoft.com/fwlink/?linkid=2213926"

SAFE_FILTER: dict[str, Any] = {
    "hate": {"filtered": False, "severity": "safe"},
    "self_harm": {"filtered": False, "severity": "safe"},
    "sexual": {"filtered": False, "severity": "safe"},
    "violence": {"filtered": False, "severity": "safe"},
}


class WireError(Exception):
    """An error response: status, JSON body and extra headers."""

    def __init__(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body
        self.headers = headers or {}


def azure_error(status: int, code: str, message: str, **headers: str) -> WireError:
    """The gateway-style body Azure uses for auth, routing and throttling errors."""
    return WireError(status, {"error": {"code": code, "message": message}}, dict(headers))


def invalid_request(message: str, *, param: str | None, code: str | None) -> WireError:
    """The model-side 400 body (OpenAI style) Azure returns for invalid requests."""
    body = {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    return WireError(400, {"error": body})


def server_error(status: int, request_id: str) -> WireError:
    message = (
        "The server had an error while processing your request. Sorry about that! You can "
        f"retry your request, or contact us through an Azure support request at: {_SUPPORT} "
        f"if the error persists. (Please include the request ID {request_id} in your message.)"
    )
    body = {"message": message, "type": "server_error", "param": None, "code": None}
    return WireError(status, {"error": body})


def filtered_results(category: str = "violence", severity: str = "medium") -> dict[str, Any]:
    results = {key: dict(value) for key, value in SAFE_FILTER.items()}
    results[category] = {"filtered": True, "severity": severity}
    return results


def prompt_filtered() -> WireError:
    results = {**filtered_results(), "jailbreak": {"filtered": False, "detected": False}}
    body = {
        "message": "The response was filtered due to the prompt triggering Azure OpenAI's "
        "content management policy. Please modify your prompt and retry. To learn more "
        f"about our content filtering policies please read our documentation: {_FILTER_DOC}",
        "type": None,
        "param": "prompt",
        "code": "content_filter",
        "status": 400,
        "innererror": {
            "code": "ResponsibleAIPolicyViolation",
            "content_filter_result": results,
        },
    }
    return WireError(400, {"error": body})


def new_completion_id() -> str:
    return "chatcmpl-" + "".join(secrets.choice(_ALPHABET) for _ in range(29))


def prompt_filter_results() -> list[dict[str, Any]]:
    safe = {**SAFE_FILTER, "jailbreak": {"filtered": False, "detected": False}}
    return [{"prompt_index": 0, "content_filter_results": safe}]


def usage(prompt: int, completion: int, reasoning: int = 0) -> dict[str, Any]:
    return {
        "completion_tokens": completion,
        "completion_tokens_details": {
            "accepted_prediction_tokens": 0,
            "audio_tokens": 0,
            "reasoning_tokens": reasoning,
            "rejected_prediction_tokens": 0,
        },
        "prompt_tokens": prompt,
        "prompt_tokens_details": {"audio_tokens": 0, "cached_tokens": 0},
        "total_tokens": prompt + completion,
    }


def chunk(
    meta: dict[str, Any],
    *,
    delta: dict[str, Any] | None = None,
    finish_reason: str | None = None,
    filter_results: dict[str, Any] | None = None,
    usage_value: dict[str, Any] | None = None,
    include_usage: bool = False,
) -> dict[str, Any]:
    """One `chat.completion.chunk`; `delta=None` gives the `choices: []` usage chunk."""
    out: dict[str, Any] = {"choices": []}
    if delta is not None:
        out["choices"] = [
            {
                "content_filter_results": filter_results if filter_results is not None else {},
                "delta": delta,
                "finish_reason": finish_reason,
                "index": 0,
                "logprobs": None,
            }
        ]
    out.update(meta)
    out["object"] = "chat.completion.chunk"
    if include_usage:
        out["usage"] = usage_value
    return out


def completion(
    meta: dict[str, Any], text: str, finish_reason: str, usage_value: dict[str, Any]
) -> dict[str, Any]:
    """A non-streaming `chat.completion` object."""
    filters = filtered_results() if finish_reason == "content_filter" else SAFE_FILTER
    return {
        "choices": [
            {
                "content_filter_results": filters,
                "finish_reason": finish_reason,
                "index": 0,
                "logprobs": None,
                "message": {
                    "annotations": [],
                    "content": text,
                    "refusal": None,
                    "role": "assistant",
                },
            }
        ],
        **meta,
        "object": "chat.completion",
        "prompt_filter_results": prompt_filter_results(),
        "usage": usage_value,
    }


def sse(data: dict[str, Any] | str) -> bytes:
    """One server-sent event: `data: <json>` and a blank line."""
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return f"data: {text}\n\n".encode()

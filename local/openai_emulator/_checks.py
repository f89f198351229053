"""The checks a request passes before it is answered: api-version, auth, deployment,
body, and the faults it asks for. Each failure raises `WireError` with Azure's body.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import math
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from ._control import parse_control
from ._pacing import Pacing
from ._profiles import Profile
from ._stats import Stats
from ._timeline import Timeline
from ._wire import (
    WireError,
    azure_error,
    invalid_request,
    prompt_filtered,
    server_error,
)

__all__ = [
    "API_VERSIONS",
    "EmulatorState",
    "authorize",
    "check_api_version",
    "fault_active",
    "find_profile",
    "immediate_fault",
    "is_loopback",
    "json_body",
]

# Dated api-versions the data plane has published (GA and preview).
API_VERSIONS = frozenset(
    [
        "2022-12-01",
        "2023-05-15",
        "2023-06-01-preview",
        "2023-07-01-preview",
        "2023-08-01-preview",
        "2023-09-01-preview",
        "2023-10-01-preview",
        "2023-12-01-preview",
        "2024-02-01",
        "2024-02-15-preview",
        "2024-03-01-preview",
        "2024-04-01-preview",
        "2024-05-01-preview",
        "2024-06-01",
        "2024-07-01-preview",
        "2024-08-01-preview",
        "2024-09-01-preview",
        "2024-10-01-preview",
        "2024-10-21",
        "2024-12-01-preview",
        "2025-01-01-preview",
        "2025-02-01-preview",
        "2025-03-01-preview",
        "2025-04-01-preview",
    ]
)
_V1_VERSIONS = frozenset({"v1", "preview", "latest"})
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


@dataclass
class EmulatorState:
    api_key: str
    deployments: Mapping[str, Profile]
    pacing: Pacing
    bearer_token: str | None = None  # a static token accepted besides JWT-shaped ones
    api_versions: frozenset[str] = API_VERSIONS
    stats: Stats = field(default_factory=Stats)
    fault_counts: Counter[str] = field(default_factory=Counter)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    timeline: Timeline | None = None  # opt-in per-delta emission stamps (benchmarks)


def _not_found() -> WireError:
    return azure_error(404, "404", "Resource not found")


def check_api_version(request: Request, state: EmulatorState, v1: bool) -> None:
    version = request.query_params.get("api-version")
    if version is None:
        if v1:
            return
        raise _not_found()
    if version not in (_V1_VERSIONS if v1 else state.api_versions):
        raise azure_error(400, "BadRequest", "API version not supported")


def _looks_like_jwt(token: str) -> bool:
    parts = token.split(".")
    if len(parts) != 3 or not all(parts[:2]):
        return False
    try:
        header, claims = (
            json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))) for p in parts[:2]
        )
    except ValueError:
        return False
    if not isinstance(header, dict) or "alg" not in header or not isinstance(claims, dict):
        return False
    exp = claims.get("exp")
    return not (isinstance(exp, int | float) and exp < time.time())


def authorize(request: Request, state: EmulatorState) -> None:
    key = request.headers.get("api-key")
    if key is not None:
        if hmac.compare_digest(key.encode(), state.api_key.encode()):
            return
        raise azure_error(
            401,
            "401",
            "Access denied due to invalid subscription key or wrong API endpoint. Make sure "
            "to provide a valid key for an active subscription and use a correct regional "
            "API endpoint for your resource.",
        )
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if not scheme:
        raise azure_error(
            401,
            "401",
            "Access denied due to missing subscription key. Make sure to include "
            "subscription key when making requests to an API.",
        )
    accepted = {state.api_key, state.bearer_token} - {None}
    if scheme.lower() == "bearer" and (token in accepted or _looks_like_jwt(token)):
        return
    raise azure_error(
        401,
        "401",
        "Unauthorized. Access token is missing, invalid, audience is incorrect "
        "(https://cognitiveservices.azure.com), or have expired.",
    )


def find_profile(state: EmulatorState, deployment: Any) -> Profile:
    profile = state.deployments.get(deployment) if isinstance(deployment, str) else None
    if profile is None:
        raise azure_error(
            404,
            "DeploymentNotFound",
            "The API deployment for this resource does not exist. If you created the "
            "deployment within the last 5 minutes, please wait a moment and try again.",
        )
    return profile


async def json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError:
        raise invalid_request(
            "We could not parse the JSON body of your request. (HINT: This likely means "
            "you aren't using your HTTP library correctly. The OpenAI API expects a JSON "
            "payload, but what was sent was not valid JSON.)",
            param=None,
            code=None,
        ) from None


def fault_active(state: EmulatorState, deployment: str, body: Any, request: Request) -> bool:
    """Count this request content; True while a `times=N` fault still applies."""
    control = parse_control(body["messages"], request.headers)
    if control.fault is None:
        return False
    blob = json.dumps([deployment, body["messages"], request.headers.get("x-emulator", "")],
                      sort_keys=True, default=str)  # fmt: skip
    key = hashlib.sha256(blob.encode()).hexdigest()
    state.fault_counts[key] += 1
    return control.times is None or state.fault_counts[key] <= control.times


def immediate_fault(state: EmulatorState, request: Request, version: str) -> None:
    """Raise the error response a fault asks for (429, 5xx, prompt filter), if any."""
    control = request.state.control
    status = control.fault_status
    if control.fault == "prompt_filter":
        state.stats.faults["prompt_filter"] += 1
        raise prompt_filtered()
    if status is None:
        return
    state.stats.faults[str(status)] += 1
    if status == 429:
        seconds = control.retry_after
        raise azure_error(
            429,
            "429",
            f"Requests to the ChatCompletions_Create Operation under Azure OpenAI API "
            f"version {version} have exceeded token rate limit of your current AIServices "
            f"S0 pricing tier. Please retry after {math.ceil(seconds)} seconds. Please "
            "contact Azure support service if you would like to further increase the "
            "default rate limit.",
            **{"retry-after": str(math.ceil(seconds)), "retry-after-ms": str(int(seconds * 1000))},
        )
    if status >= 500:
        raise server_error(status, str(uuid.uuid4()))
    raise azure_error(status, str(status), f"Emulated error {status}.")


def is_loopback(request: Request) -> bool:
    return request.client is not None and request.client.host in _LOOPBACK

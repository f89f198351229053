"""Async client for the Azure SignalR Service data-plane REST API (api-version 2022-06-01).

The operations (sends, groups, existence checks, negotiate); authentication, retries and
error mapping live in `_rest.RestCaller`, shared by every call of one client.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from ..errors import SignalRError, SignalRRequestError, SignalRTransientError
from ._connstr import EMULATOR_ACCESS_KEY, is_loopback_url, parse_connection_string
from ._rest import API_VERSION, RestCaller
from ._retry import RetryPolicy
from ._tokens import AsyncTokenCredential

__all__ = ["API_VERSION", "TOKEN_API_VERSION", "SignalRClient", "TargetLike"]

TOKEN_API_VERSION = "2022-11-01"  # :generateToken arrived in this version
_MAX_BODY_BYTES = 1024 * 1024  # the service refuses larger bodies
_HUB_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")


class TargetLike(Protocol):
    """Anything with `kind` ("user" | "group" | "connection") and `id`: e.g. relay.jobs.Target."""

    @property
    def kind(self) -> str: ...

    @property
    def id(self) -> str: ...


def _seg(value: str, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string")
    return quote(value, safe="")


class SignalRClient:
    """Send messages and manage groups through the SignalR Service REST API."""

    def __init__(
        self,
        connection_string: str,
        hub: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        credential: AsyncTokenCredential | None = None,
        timeout_s: float = 10.0,
        max_retries: int = 3,
        backoff_base_s: float = 0.2,
        backoff_cap_s: float = 2.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        conn = parse_connection_string(connection_string)
        if conn.access_key == EMULATOR_ACCESS_KEY and not is_loopback_url(conn.endpoint):
            raise ValueError(
                "the SignalR emulator's public AccessKey is refused for a non-local endpoint"
            )
        if not isinstance(hub, str) or not _HUB_RE.match(hub):
            raise ValueError("hub must start with a letter and hold only letters, digits, _")
        if max_retries < 0 or backoff_base_s < 0 or backoff_cap_s < 0 or timeout_s <= 0:
            raise ValueError("retry and timeout settings must not be negative")
        self.connection = conn
        self.hub = hub.lower()  # hub names are case-insensitive; the SDKs lowercase them
        self._rest = RestCaller(
            conn,
            transport=transport,
            credential=credential,
            timeout_s=timeout_s,
            retry=RetryPolicy(max_retries, backoff_base_s, backoff_cap_s),
            clock=clock,
            sleep=sleep,
            rng=rng,
        )

    # -- lifecycle ---------------------------------------------------------------------

    async def aclose(self) -> None:
        await self._rest.aclose()

    async def __aenter__(self) -> SignalRClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _hub_path(self) -> str:
        return f"/api/hubs/{quote(self.hub, safe='')}"

    @staticmethod
    def _payload(target: str, arguments: Sequence[Any]) -> bytes:
        if not isinstance(target, str) or not target:
            raise ValueError("target must be a non-empty string")
        body = json.dumps(
            {"target": target, "arguments": list(arguments)},
            ensure_ascii=False,
            separators=(",", ":"),
            allow_nan=False,
        ).encode("utf-8")
        if len(body) > _MAX_BODY_BYTES:
            raise SignalRRequestError("message body exceeds the 1 MB REST limit", status=413)
        return body

    # -- sends -------------------------------------------------------------------------

    async def send_to_all(
        self, target: str, arguments: Sequence[Any], *, excluded: Sequence[str] = ()
    ) -> None:
        params = {"excluded": list(excluded)} if excluded else None
        await self._rest.request(
            "send_to_all",
            "POST",
            f"{self._hub_path()}/:send",
            params=params,
            body=self._payload(target, arguments),
            ok=(202, 200),
        )

    async def send_to_user(self, user_id: str, target: str, arguments: Sequence[Any]) -> None:
        path = f"{self._hub_path()}/users/{_seg(user_id, 'user_id')}/:send"
        await self._rest.request(
            "send_to_user", "POST", path, body=self._payload(target, arguments), ok=(202, 200)
        )

    async def send_to_group(
        self, group: str, target: str, arguments: Sequence[Any], *, excluded: Sequence[str] = ()
    ) -> None:
        path = f"{self._hub_path()}/groups/{_seg(group, 'group')}/:send"
        params = {"excluded": list(excluded)} if excluded else None
        await self._rest.request(
            "send_to_group",
            "POST",
            path,
            params=params,
            body=self._payload(target, arguments),
            ok=(202, 200),
        )

    async def send_to_connection(
        self, connection_id: str, target: str, arguments: Sequence[Any]
    ) -> None:
        path = f"{self._hub_path()}/connections/{_seg(connection_id, 'connection_id')}/:send"
        await self._rest.request(
            "send_to_connection",
            "POST",
            path,
            body=self._payload(target, arguments),
            ok=(202, 200),
        )

    async def send(self, target: TargetLike, name: str, arguments: Sequence[Any]) -> None:
        """Send to a job's target: `target.kind` is "user", "group" or "connection"."""
        if target.kind == "user":
            await self.send_to_user(target.id, name, arguments)
        elif target.kind == "group":
            await self.send_to_group(target.id, name, arguments)
        elif target.kind == "connection":
            await self.send_to_connection(target.id, name, arguments)
        else:
            raise ValueError(f"unknown target kind {target.kind!r}")

    # -- groups, users, connections ----------------------------------------------------

    async def add_user_to_group(self, user_id: str, group: str, ttl_s: int | None = None) -> None:
        if ttl_s is not None and (isinstance(ttl_s, bool) or ttl_s < 0):
            raise ValueError("ttl_s must be a non-negative number of seconds")
        path = f"{self._hub_path()}/users/{_seg(user_id, 'user_id')}/groups/{_seg(group, 'group')}"
        params = {"ttl": int(ttl_s)} if ttl_s is not None else None
        await self._rest.request("add_user_to_group", "PUT", path, params=params, ok=(200, 204))

    async def remove_user_from_group(self, user_id: str, group: str) -> None:
        path = f"{self._hub_path()}/users/{_seg(user_id, 'user_id')}/groups/{_seg(group, 'group')}"
        await self._rest.request("remove_user_from_group", "DELETE", path, ok=(200, 204))

    async def remove_user_from_all_groups(self, user_id: str) -> None:
        path = f"{self._hub_path()}/users/{_seg(user_id, 'user_id')}/groups"
        await self._rest.request("remove_user_from_all_groups", "DELETE", path, ok=(200, 204))

    async def add_connection_to_group(self, connection_id: str, group: str) -> None:
        """Raises SignalRRequestError(404) when the connection does not exist."""
        path = (
            f"{self._hub_path()}/groups/{_seg(group, 'group')}"
            f"/connections/{_seg(connection_id, 'connection_id')}"
        )
        await self._rest.request("add_connection_to_group", "PUT", path, ok=(200, 204))

    async def remove_connection_from_group(self, connection_id: str, group: str) -> bool:
        """False when the connection was not there (404); removal is idempotent."""
        path = (
            f"{self._hub_path()}/groups/{_seg(group, 'group')}"
            f"/connections/{_seg(connection_id, 'connection_id')}"
        )
        response = await self._rest.request(
            "remove_connection_from_group", "DELETE", path, ok=(200, 204), allow_404=True
        )
        return response.status_code != 404

    async def _exists(self, op: str, path: str) -> bool:
        response = await self._rest.request(op, "HEAD", path, ok=(200,), allow_404=True)
        return response.status_code == 200

    async def user_exists(self, user_id: str) -> bool:
        return await self._exists(
            "user_exists", f"{self._hub_path()}/users/{_seg(user_id, 'user_id')}"
        )

    async def connection_exists(self, connection_id: str) -> bool:
        cid = _seg(connection_id, "connection_id")
        return await self._exists("connection_exists", f"{self._hub_path()}/connections/{cid}")

    async def group_exists(self, group: str) -> bool:
        return await self._exists(
            "group_exists", f"{self._hub_path()}/groups/{_seg(group, 'group')}"
        )

    async def user_in_group(self, user_id: str, group: str) -> bool:
        path = f"{self._hub_path()}/users/{_seg(user_id, 'user_id')}/groups/{_seg(group, 'group')}"
        return await self._exists("user_in_group", path)

    async def close_connection(self, connection_id: str, reason: str | None = None) -> None:
        path = f"{self._hub_path()}/connections/{_seg(connection_id, 'connection_id')}"
        params = {"reason": reason} if reason else None
        await self._rest.request("close_connection", "DELETE", path, params=params, ok=(200, 204))

    async def health(self) -> bool:
        """True when `HEAD /api/health` answers 200; never raises, never retries."""
        try:
            await self._rest.request("health", "HEAD", "/api/health", retries=0)
        except SignalRError:
            return False
        return True

    # -- client access (negotiate) -----------------------------------------------------

    def client_url(self) -> str:
        return f"{self.connection.client_base}/client/?hub={quote(self.hub, safe='')}"

    async def client_token(self, user_id: str | None, minutes: int) -> str:
        """An access token for a browser to connect to this hub, as `user_id` if given."""
        if isinstance(minutes, bool) or not 1 <= minutes <= 1440:
            raise ValueError("minutes must be between 1 and 1440")
        if user_id is not None and not (isinstance(user_id, str) and user_id):
            raise ValueError("user_id must be a non-empty string or None")
        if self._rest.signer is not None:
            claims: dict[str, Any] = {"aud": self.client_url()}
            if user_id is not None:
                # current SDKs read asrs.s.uid; docs and older SDKs use nameid
                claims["asrs.s.uid"] = user_id
                claims["nameid"] = user_id
            token, _ = self._rest.signer.sign(claims, minutes * 60)
            return token
        params: dict[str, Any] = {"minutesToExpire": minutes}
        if user_id is not None:
            params["userId"] = user_id
        response = await self._rest.request(
            "client_token",
            "POST",
            f"{self._hub_path()}/:generateToken",
            params=params,
            api_version=TOKEN_API_VERSION,
        )
        try:
            token = response.json()["token"]
        except (ValueError, KeyError, TypeError) as exc:
            raise SignalRTransientError("client_token: SignalR answered without a token") from exc
        if not isinstance(token, str) or not token:
            raise SignalRTransientError("client_token: SignalR answered without a token")
        return token

    async def negotiate(self, user_id: str | None, minutes: int) -> dict[str, str]:
        """The redirect answer for the SignalR client's negotiate: `{url, accessToken}`."""
        return {"url": self.client_url(), "accessToken": await self.client_token(user_id, minutes)}

"""Bearer tokens for the SignalR Service REST API and for clients.

AccessKey mode: HS256 JWTs signed with the UTF-8 bytes of the AccessKey string (not its base64
decoding), `aud` = the request URL without query or trailing slash, cached per audience.
Entra ID mode: tokens from an azure-core async TokenCredential, cached until near expiry.
No token or key is ever logged or put in an exception message.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

import jwt

__all__ = [
    "ENTRA_SCOPE",
    "AccessKeySigner",
    "AsyncTokenCredential",
    "EntraTokenCache",
]

ENTRA_SCOPE = "https://signalr.azure.com/.default"

_REST_TOKEN_LIFETIME_S = 3600  # the service SDKs' default access token lifetime
_REFRESH_MARGIN_S = 300  # renew a cached token when less than this is left
_CACHE_MAX = 4096  # audiences differ per user/group/connection: keep the cache bounded


class _AccessToken(Protocol):
    @property
    def token(self) -> str: ...

    @property
    def expires_on(self) -> int: ...


class AsyncTokenCredential(Protocol):
    """The slice of `azure.core.credentials_async.AsyncTokenCredential` we use."""

    async def get_token(self, *scopes: str, **kwargs: Any) -> _AccessToken: ...

    async def close(self) -> None: ...


class AccessKeySigner:
    """Signs REST and client tokens with an AccessKey; caches REST tokens per audience."""

    def __init__(self, access_key: str, clock: Callable[[], float]) -> None:
        self._key = access_key.encode("utf-8")
        self._clock = clock
        self._cache: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def sign(self, claims: dict[str, Any], lifetime_s: float) -> tuple[str, float]:
        now = int(self._clock())
        exp = now + int(lifetime_s)
        token = jwt.encode({**claims, "iat": now, "nbf": now, "exp": exp}, self._key, "HS256")
        return token, float(exp)

    def rest_token(self, audience: str) -> str:
        now = self._clock()
        hit = self._cache.get(audience)
        if hit is not None and hit[1] - now > _REFRESH_MARGIN_S:
            self._cache.move_to_end(audience)
            return hit[0]
        token, exp = self.sign({"aud": audience}, _REST_TOKEN_LIFETIME_S)
        self._cache[audience] = (token, exp)
        self._cache.move_to_end(audience)
        while len(self._cache) > _CACHE_MAX:
            self._cache.popitem(last=False)
        return token


class EntraTokenCache:
    """One cached Entra ID token for the SignalR scope, renewed shortly before it expires."""

    def __init__(self, credential: AsyncTokenCredential, clock: Callable[[], float]) -> None:
        self.credential = credential
        self._clock = clock
        self._token: str | None = None
        self._expires_on = 0.0
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        if self._token is not None and self._expires_on - self._clock() > _REFRESH_MARGIN_S:
            return self._token
        async with self._lock:  # one refresh at a time; the others reuse its result
            if self._token is None or self._expires_on - self._clock() <= _REFRESH_MARGIN_S:
                got = await self.credential.get_token(ENTRA_SCOPE)
                self._token, self._expires_on = got.token, float(got.expires_on)
            return self._token

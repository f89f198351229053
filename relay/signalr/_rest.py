"""The one request loop of the SignalR REST client: auth, retries, error mapping.

Transient failures (connection errors, timeouts, 429, 5xx) are retried with bounded exponential
backoff and full jitter, honouring Retry-After up to the cap, then raise
`SignalRTransientError`; other 4xx raise `SignalRRequestError`. httpx and azure-core errors are
mapped in `_map_foreign` only, and re-raised `from exc`. Nothing here logs a token or a key.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx
from azure.core.exceptions import AzureError

from .._aiohttp import client_timeout
from ..errors import SignalRError, SignalRRequestError, SignalRTransientError
from ._connstr import SignalRConnection
from ._retry import RetryPolicy, is_transient_status, parse_retry_after
from ._tokens import AccessKeySigner, AsyncTokenCredential, EntraTokenCache
from ._transport import AiohttpTransport

__all__ = ["API_VERSION", "RestCaller"]

API_VERSION = "2022-06-01"
_SERVICE_CODE_RE = re.compile(r"[A-Za-z0-9_.]{1,64}\Z")

log = logging.getLogger("relay.signalr")


def _map_foreign(op: str, exc: Exception) -> SignalRError:
    """The one place where httpx and azure-core exceptions become SignalR errors."""
    if isinstance(exc, httpx.TimeoutException):
        return SignalRTransientError(f"{op}: SignalR request timed out")
    if isinstance(exc, httpx.NetworkError | httpx.RemoteProtocolError):
        return SignalRTransientError(f"{op}: could not reach SignalR ({type(exc).__name__})")
    if isinstance(exc, AzureError):
        return SignalRTransientError(f"{op}: could not get a Microsoft Entra ID token")
    return SignalRRequestError(f"{op}: SignalR request failed ({type(exc).__name__})")


def _status_error(op: str, response: httpx.Response) -> SignalRError:
    detail = ""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        code = body.get("code")
        if isinstance(code, str) and _SERVICE_CODE_RE.match(code):
            detail = f" ({code})"
    status = response.status_code
    cls = SignalRTransientError if is_transient_status(status) else SignalRRequestError
    return cls(f"{op}: SignalR answered {status}{detail}", status=status)


class RestCaller:
    """Authenticated, retried REST requests against one SignalR Service endpoint."""

    def __init__(
        self,
        connection: SignalRConnection,
        *,
        transport: httpx.AsyncBaseTransport | None,
        credential: AsyncTokenCredential | None,
        timeout_s: float,
        retry: RetryPolicy,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
        rng: Callable[[], float],
    ) -> None:
        self.connection = connection
        self._clock = clock
        self._sleep = sleep
        self._rng = rng
        self._retry = retry
        key = connection.access_key
        self.signer = AccessKeySigner(key, clock) if key else None
        self._credential = credential
        self._owns_credential = False
        self._entra: EntraTokenCache | None = None
        # Our own transport (no `transport` given): requests are laid out here as httpx lays
        # them out (the same request line and header list; tests compare the two) and sent
        # with `send_direct`, skipping httpx's per-request building. A given transport (tests,
        # callers with their own) gets every request through httpx.
        self._direct = AiohttpTransport() if transport is None else None
        self._http = httpx.AsyncClient(
            transport=transport if transport is not None else self._direct,
            timeout=httpx.Timeout(timeout_s),
            headers={"User-Agent": "llm-signalr-relay"},
        )
        self._defaults = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in
                          self._http.headers.raw]  # fmt: skip
        self._host = httpx.URL(connection.endpoint).netloc.decode("ascii")
        self._timeout = client_timeout({"timeout": httpx.Timeout(timeout_s).as_dict()})

    async def aclose(self) -> None:
        await self._http.aclose()
        if self._owns_credential and self._credential is not None:
            await self._credential.close()

    # -- auth --------------------------------------------------------------------------

    def _entra_cache(self) -> EntraTokenCache:
        if self._entra is None:
            if self._credential is None:
                from azure.identity.aio import DefaultAzureCredential, ManagedIdentityCredential

                cid = self.connection.client_id
                self._credential = (
                    ManagedIdentityCredential(client_id=cid) if cid else DefaultAzureCredential()
                )
                self._owns_credential = True
            self._entra = EntraTokenCache(self._credential, self._clock)
        return self._entra

    async def _bearer(self, url: str) -> str:
        if self.signer is not None:
            # aud is the request URL without query and without a trailing slash
            return self.signer.rest_token(url.rstrip("/"))
        return await self._entra_cache().token()

    def _wire_headers(self, method: str, body: bytes | None, token: str) -> list[tuple[str, str]]:
        """The header list httpx would send: Host (and an empty body's Content-Length for
        POST/PUT/PATCH) first, the client's defaults, the request's own, then the length."""
        headers = [("Host", self._host)]
        if body is None and method in ("POST", "PUT", "PATCH"):
            headers.append(("Content-Length", "0"))
        headers += self._defaults
        if body is not None:
            headers.append(("Content-Type", "application/json"))
        headers.append(("Authorization", f"Bearer {token}"))
        if body is not None:
            headers.append(("Content-Length", str(len(body))))
        return headers

    async def _send(
        self, method: str, url: str, query: dict[str, Any], body: bytes | None, token: str
    ) -> httpx.Response:
        if self._direct is not None:
            target = f"{url}?{httpx.QueryParams(query)}"
            wire = self._wire_headers(method, body, token)
            return await self._direct.send_direct(method, target, wire, body, self._timeout)
        headers = {"Content-Type": "application/json"} if body is not None else {}
        headers["Authorization"] = f"Bearer {token}"
        return await self._http.request(method, url, params=query, content=body, headers=headers)

    # -- the one request loop ----------------------------------------------------------

    async def request(
        self,
        op: str,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: bytes | None = None,
        ok: Sequence[int] = (200,),
        allow_404: bool = False,
        api_version: str = API_VERSION,
        retries: int | None = None,
    ) -> httpx.Response:
        url = self.connection.endpoint + path
        query: dict[str, Any] = {"api-version": api_version, **(params or {})}
        max_retries = self._retry.max_retries if retries is None else retries
        attempt = 0
        while True:
            try:
                token = await self._bearer(url)
                response = await self._send(method, url, query, body, token)
            except (httpx.HTTPError, AzureError) as exc:
                error = _map_foreign(op, exc)
                if not error.retryable or attempt >= max_retries:
                    raise error from exc
                delay = self._retry.delay(attempt, self._rng, None)
                log.debug("signalr %s: %s; retry in %.2fs", op, type(exc).__name__, delay)
            else:
                status = response.status_code
                if status in ok or (allow_404 and status == 404):
                    return response
                error = _status_error(op, response)
                if not error.retryable or attempt >= max_retries:
                    raise error
                after = parse_retry_after(response.headers.get("retry-after"), self._clock())
                delay = self._retry.delay(attempt, self._rng, after)
                log.debug("signalr %s: HTTP %d; retry in %.2fs", op, status, delay)
            attempt += 1
            await self._sleep(delay)

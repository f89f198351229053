"""The app's HTTP API as the terminal client uses it, with the dev identity header.

Every failure becomes one `CliError` subclass carrying the exit code the CLI ends with:
`ServiceDown` (the host cannot be reached, or answers 5xx), `ApiFailure` (a 4xx, with the
app's `{"error": {code, message, field?}}` body). httpx errors are mapped here only.
"""

from __future__ import annotations

from typing import Any

import httpx

__all__ = ["EXIT_API", "EXIT_DOWN", "ApiClient", "ApiFailure", "CliError", "ServiceDown"]

EXIT_API = 2
EXIT_DOWN = 3


class CliError(Exception):
    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ServiceDown(CliError):
    exit_code = EXIT_DOWN


class ApiFailure(CliError):
    exit_code = EXIT_API

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        where = f" ({field})" if field else ""
        super().__init__(f"HTTP {status} {code}: {message}{where}")
        self.status, self.code, self.field = status, code, field


def _failure(response: httpx.Response) -> CliError:
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    code = str(error.get("code") or "http_error")
    message = str(error.get("message") or response.reason_phrase or "request failed")
    if response.status_code >= 500:
        return ServiceDown(f"the app answered HTTP {response.status_code} {code}: {message}")
    return ApiFailure(response.status_code, code, message, error.get("field"))


class ApiClient:
    """`base` is the host's root URL (e.g. http://127.0.0.1:7071); routes start with /api."""

    def __init__(
        self,
        base: str,
        user: str,
        *,
        timeout: float = 15.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base = base.rstrip("/")
        self.user = user
        self._http = httpx.AsyncClient(
            base_url=self.base,
            headers={"x-ms-client-principal-id": user},
            timeout=timeout,
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """(status, decoded JSON) of a 2xx answer; raises `CliError` otherwise."""
        try:
            response = await self._http.request(method, path, json=body)
        except httpx.TimeoutException as exc:
            raise ServiceDown(f"{self.base} did not answer {method} {path} in time") from exc
        except httpx.TransportError as exc:
            raise ServiceDown(
                f"cannot reach {self.base} ({type(exc).__name__}); is it running?"
            ) from exc
        if response.status_code >= 400:
            raise _failure(response)
        try:
            return response.status_code, response.json() if response.content else None
        except ValueError as exc:
            raise ServiceDown(f"{method} {path} answered with something other than JSON") from exc

    async def negotiate(self) -> dict[str, Any]:
        _, info = await self.call("POST", "/api/negotiate")
        if not isinstance(info, dict) or "url" not in info or "accessToken" not in info:
            raise ServiceDown("negotiate did not answer {url, accessToken}")
        return info

    async def submit(self, body: dict[str, Any]) -> str:
        _, out = await self.call("POST", "/api/jobs", body)
        return str(out["jobId"])

    async def job(self, job_id: str) -> dict[str, Any]:
        _, out = await self.call("GET", f"/api/jobs/{job_id}")
        return dict(out)

    async def events(self, job_id: str, attempt: int, after: int) -> list[dict[str, Any]]:
        """Every recorded event of `attempt` after `after`, following `more` pages."""
        out: list[dict[str, Any]] = []
        while True:
            _, page = await self.call(
                "GET", f"/api/jobs/{job_id}/events?after={after}&attempt={attempt}"
            )
            out += page["events"]
            if not page.get("more") or not page["events"]:
                return out
            after = page["events"][-1]["seq"]

    async def join_group(self, group: str) -> str:
        _, out = await self.call("PUT", f"/api/groups/{group}/members/me")
        return str(out.get("result", "joined"))

    async def claim(self, connection_id: str, nonce: str | None = None) -> dict[str, Any]:
        body = {} if nonce is None else {"nonce": nonce}
        _, out = await self.call("POST", f"/api/connections/{connection_id}/claim", body)
        return dict(out)

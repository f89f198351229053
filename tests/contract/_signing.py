"""An independent Azure SignalR REST caller for the contract tests: tokens are built here
from the documented rules (HS256 over the AccessKey's UTF-8 bytes, `aud` = the request URL
without its query, `exp`), not with the app's client or the emulator's helpers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import httpx

__all__ = ["RestCaller", "parse_connection_string", "sign"]

API_VERSION = "2022-06-01"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def sign(key: str, claims: dict[str, Any]) -> str:
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(claims).encode())
    mac = hmac.new(key.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(mac)}"


def parse_connection_string(value: str) -> tuple[str, str]:
    """(endpoint with port, access key) from `Endpoint=...;Port=...;AccessKey=...;`."""
    parts = dict(p.split("=", 1) for p in value.strip(";").split(";") if p)
    fields = {k.lower(): v for k, v in parts.items()}
    endpoint = fields["endpoint"].rstrip("/")
    if "port" in fields:
        endpoint = f"{endpoint}:{fields['port']}"
    return endpoint, fields["accesskey"]


class RestCaller:
    """Calls `/api/hubs/{hub}/...` with a fresh token per request."""

    def __init__(self, connection_string: str, hub: str = "stream") -> None:
        self.endpoint, self.key = parse_connection_string(connection_string)
        self.hub = hub
        self.http = httpx.Client(timeout=10.0)

    def token(self, url: str, lifetime_s: int = 300) -> str:
        return sign(self.key, {"aud": url, "exp": int(time.time()) + lifetime_s})

    def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, str] | None = None,
        api_version: str = API_VERSION,
    ) -> httpx.Response:
        url = f"{self.endpoint}/api/hubs/{self.hub}{path}"
        query = {"api-version": api_version, **(params or {})}
        headers = {"Authorization": f"Bearer {self.token(url)}"}
        return self.http.request(method, url, params=query, json=body, headers=headers)

    def client_token(self, user: str, lifetime_s: int = 300) -> tuple[str, str]:
        """(client url, access token) as a negotiate function would hand them out."""
        url = f"{self.endpoint}/client/?hub={self.hub}"
        claims = {"aud": url, "exp": int(time.time()) + lifetime_s, "nameid": user}
        return url, sign(self.key, claims)

    def close(self) -> None:
        self.http.close()

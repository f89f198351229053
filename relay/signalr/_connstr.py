"""SignalR Service connection strings: parsing and the emulator-key guard.

`Endpoint=https://NAME.service.signalr.net;AccessKey=KEY;Version=1.0;[Port=N;][ClientEndpoint=URL;]`
or, with Entra ID, `Endpoint=...;AuthType=azure.msi;[ClientId=ID;]Version=1.0;`.
Keys are case-insensitive and `Port` overrides the endpoint's port. Error messages name the
offending key, never its value when that value may be a secret.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "EMULATOR_ACCESS_KEY",
    "SignalRConnection",
    "is_loopback_url",
    "parse_connection_string",
]

# The official local emulator's fixed, public key. Anything signed with it is forgeable by
# anyone, so it is only acceptable against a service on this machine.
EMULATOR_ACCESS_KEY = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCDEFGH"

AuthType = Literal["accesskey", "azure.msi"]

_KNOWN_KEYS = frozenset(
    {"endpoint", "accesskey", "version", "port", "authtype", "clientid", "clientendpoint"}
)


@dataclass(frozen=True)
class SignalRConnection:
    """A parsed connection string. `endpoint` is the REST base URL with `Port` applied."""

    endpoint: str
    access_key: str | None = field(repr=False)
    port: int | None
    auth_type: AuthType
    client_id: str | None
    version: str
    client_endpoint: str | None = None  # where browsers connect, when not `endpoint`

    @property
    def uses_identity(self) -> bool:
        return self.auth_type == "azure.msi"

    @property
    def client_base(self) -> str:
        """Base URL that clients connect to (ClientEndpoint, else the service endpoint)."""
        return self.client_endpoint or self.endpoint


def _base_url(raw: str, what: str, port: int | None) -> str:
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"SignalR connection string: {what} must be an http(s) URL")
    if parts.query or parts.fragment or parts.path not in ("", "/"):
        raise ValueError(f"SignalR connection string: {what} must be a bare URL (no path)")
    try:
        own_port = parts.port
    except ValueError as exc:
        raise ValueError(f"SignalR connection string: {what} has an invalid port") from exc
    host = parts.hostname
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    chosen = port if port is not None else own_port
    netloc = host if chosen is None else f"{host}:{chosen}"
    return urlunsplit((parts.scheme, netloc, "", "", ""))


def parse_connection_string(text: str) -> SignalRConnection:
    """Parse a SignalR Service connection string; raise ValueError naming the problem."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("SignalR connection string is empty")
    values: dict[str, str] = {}
    for item in text.split(";"):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if not sep or not key:
            raise ValueError("SignalR connection string: every part must be Key=Value")
        if key in values:
            raise ValueError(f"SignalR connection string: {key!r} appears twice")
        if key in _KNOWN_KEYS:
            values[key] = value.strip()

    port: int | None = None
    if values.get("port"):
        try:
            port = int(values["port"])
        except ValueError:
            port = -1
        if not 0 < port < 65536:
            raise ValueError("SignalR connection string: Port must be an integer 1..65535")
    if not values.get("endpoint"):
        raise ValueError("SignalR connection string has no Endpoint")
    endpoint = _base_url(values["endpoint"], "Endpoint", port)
    client_endpoint = (
        _base_url(values["clientendpoint"], "ClientEndpoint", None)
        if values.get("clientendpoint")
        else None
    )

    version = values.get("version") or "1.0"
    if version != "1.0":
        raise ValueError("SignalR connection string: only Version=1.0 is supported")

    access_key = values.get("accesskey") or None
    auth = (values.get("authtype") or "").lower()
    client_id = values.get("clientid") or None
    if auth:
        if auth != "azure.msi":
            raise ValueError(
                "SignalR connection string: AuthType must be azure.msi (managed identity)"
            )
        if access_key is not None:
            raise ValueError("SignalR connection string: set AccessKey or AuthType, not both")
        return SignalRConnection(
            endpoint, None, port, "azure.msi", client_id, version, client_endpoint
        )
    if access_key is None:
        raise ValueError(
            "SignalR connection string needs AccessKey, or AuthType=azure.msi for Entra ID"
        )
    return SignalRConnection(
        endpoint, access_key, port, "accesskey", client_id, version, client_endpoint
    )


def is_loopback_url(url: str) -> bool:
    """True when the URL's host is this machine (localhost, 127.0.0.0/8, ::1)."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

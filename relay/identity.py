"""Who is calling: the one place that decides.

In Azure the caller is the App Service Authentication principal. The platform strips and
re-injects the `x-ms-client-principal-*` headers only when authentication is on, which it
reports with `WEBSITE_AUTH_ENABLED=True`; with it off anyone could forge them, so they are
ignored and every request is anonymous (401). In local development (`AUTH_MODE=dev`, which
the settings refuse in Azure) the caller names itself with `x-ms-client-principal-id`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from .settings import Settings

__all__ = ["Caller", "caller_from_headers", "valid_user_id"]

# User ids become SignalR user ids and table keys: keep them to a safe alphabet. Entra
# object ids (GUIDs) and dev names both fit.
_USER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")
_NAME = re.compile(r"^[^\x00-\x1f\x7f]{1,256}$")


@dataclass(frozen=True)
class Caller:
    user_id: str
    name: str | None = None
    identity_provider: str | None = None


def valid_user_id(value: str) -> bool:
    return bool(_USER_ID.match(value))


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        # azure.functions.HttpRequest headers are case-insensitive; plain dicts may not be.
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value.strip() if isinstance(value, str) else None


def caller_from_headers(headers: Mapping[str, str], settings: Settings) -> Caller | None:
    """The authenticated caller, or None (the HTTP layer answers 401)."""
    if settings.auth_mode == "platform" and not settings.platform_auth_enabled:
        return None
    if settings.auth_mode == "dev" and settings.in_azure:  # settings refuse this; belt and braces
        return None
    user_id = _header(headers, "x-ms-client-principal-id")
    if not user_id or not valid_user_id(user_id):
        return None
    name = _header(headers, "x-ms-client-principal-name")
    idp = _header(headers, "x-ms-client-principal-idp")
    return Caller(
        user_id=user_id,
        name=name if name and _NAME.match(name) else None,
        identity_provider=idp if idp and _NAME.match(idp) else None,
    )

"""Access tokens as Azure SignalR Service checks them: HS256 JWTs signed with the AccessKey.

The key is the UTF-8 bytes of the AccessKey string (not its base64 decoding). Client
tokens carry `aud` = `{endpoint}/client/?hub={hub}`; REST tokens carry `aud` = the request
URL without its query. Audiences are compared after normalising: scheme and host
lower-cased, default ports made explicit, trailing slashes of the path dropped, and for
client URLs only the `hub` parameter kept (hub names are case-insensitive).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import jwt

__all__ = [
    "USER_ID_CLAIMS",
    "TokenError",
    "bearer_token",
    "client_audience",
    "issue_token",
    "normalize_audience",
    "user_id_of",
    "verify_token",
]

# The current SDKs write `asrs.s.uid`; older SDKs and the docs use `nameid`, and .NET
# tokens may carry the long ClaimTypes.NameIdentifier form.
USER_ID_CLAIMS = (
    "asrs.s.uid",
    "nameid",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier",
)


class TokenError(Exception):
    """The request carries no usable token; `reason` is safe to show the caller."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def normalize_audience(url: str, *, keep_hub: bool) -> str:
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port or {"http": 80, "https": 443, "ws": 80, "wss": 443}.get(scheme, 0)
    path = parts.path.rstrip("/")
    out = f"{scheme}://{host}:{port}{path}"
    if keep_hub:
        hub = next((v for k, v in parse_qsl(parts.query) if k.lower() == "hub"), "")
        out += f"?hub={hub.lower()}"
    return out


def client_audience(base_url: str, hub: str) -> str:
    return f"{base_url.rstrip('/')}/client/?hub={hub.lower()}"


def issue_token(
    access_key: str,
    audience: str,
    *,
    user_id: str | None = None,
    lifetime_s: float = 3600,
    now: float | None = None,
    extra: Mapping[str, Any] | None = None,
) -> str:
    issued = time.time() if now is None else now
    claims: dict[str, Any] = {"aud": audience, "iat": int(issued), "exp": int(issued + lifetime_s)}
    if user_id:
        claims["asrs.s.uid"] = user_id
    claims.update(extra or {})
    return jwt.encode(claims, access_key.encode("utf-8"), algorithm="HS256")


def verify_token(
    token: str,
    access_key: str,
    audiences: Iterable[str],
    *,
    keep_hub: bool,
    now: float | None = None,
    leeway_s: float = 0,
) -> dict[str, Any]:
    """Check signature, `exp` and `aud`; return the claims. Raises TokenError."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            access_key.encode("utf-8"),
            algorithms=["HS256"],
            options={"require": ["exp"], "verify_aud": False, "verify_exp": False},
        )
    except jwt.InvalidSignatureError as exc:
        raise TokenError("token signature is invalid (wrong access key?)") from exc
    except jwt.MissingRequiredClaimError as exc:
        raise TokenError("token has no 'exp' claim") from exc
    except jwt.PyJWTError as exc:
        raise TokenError("token is not a valid HS256 JWT") from exc
    exp = claims.get("exp")
    current = time.time() if now is None else now
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise TokenError("token 'exp' is not a number")
    if exp + leeway_s <= current:
        raise TokenError("token has expired")
    aud = claims.get("aud")
    given = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    wanted = {normalize_audience(a, keep_hub=keep_hub) for a in audiences}
    if not any(
        isinstance(a, str) and normalize_audience(a, keep_hub=keep_hub) in wanted for a in given
    ):
        raise TokenError("token audience does not match this endpoint")
    return claims


def user_id_of(claims: Mapping[str, Any]) -> str | None:
    for name in USER_ID_CLAIMS:
        value = claims.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def bearer_token(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """The token from `Authorization: Bearer`, else from the `access_token` query parameter."""
    auth = headers.get("Authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    token = query.get("access_token")
    return token or None

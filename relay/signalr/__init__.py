"""Azure SignalR Service REST client (serverless mode): sends, groups, negotiate tokens."""

from ._client import API_VERSION, TOKEN_API_VERSION, SignalRClient, TargetLike
from ._connstr import (
    EMULATOR_ACCESS_KEY,
    SignalRConnection,
    is_loopback_url,
    parse_connection_string,
)
from ._tokens import ENTRA_SCOPE, AsyncTokenCredential

__all__ = [
    "API_VERSION",
    "EMULATOR_ACCESS_KEY",
    "ENTRA_SCOPE",
    "TOKEN_API_VERSION",
    "AsyncTokenCredential",
    "SignalRClient",
    "SignalRConnection",
    "TargetLike",
    "is_loopback_url",
    "parse_connection_string",
]

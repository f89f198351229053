"""The terminal client's parts: the app's HTTP API, a SignalR hub client, the stream contract.

Development tooling only (under local/, excluded from deployment). `python -m local.demo`
is the entry point; `bench.pipeline` reuses the hub client and the API client.
"""

from .api import ApiClient, ApiFailure, CliError, ServiceDown
from .follow import Follower
from .hub import HubClient, HubMessage

__all__ = [
    "ApiClient",
    "ApiFailure",
    "CliError",
    "Follower",
    "HubClient",
    "HubMessage",
    "ServiceDown",
]

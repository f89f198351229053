"""A local Azure Functions host for Python v2 apps (HTTP, queue and timer triggers, durable).

`python -m local.host --app-dir DIR --port 7071` runs a function app unchanged, the way
`func start` would; see docs/fidelity.md for what matches the real host and what does not.
"""

from __future__ import annotations

from .host import Host, HostError, HostOptions

__all__ = ["Host", "HostError", "HostOptions"]

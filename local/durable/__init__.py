"""A local Durable Functions engine on Azure Storage (Azurite), for the local Functions host.

Orchestrators run through the SDK's own handler (replay protocol schema v2); activities run
at least once from a work-item queue; state lives in `{Hub}Instances` / `{Hub}History` tables.
See docs/fidelity.md ("Durable") for what matches the extension and what does not.
"""

from ._engine import DurableEngine

__all__ = ["DurableEngine"]

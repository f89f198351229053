"""The local stack as a browser sees it: the page's origin is the host's own, on a free port.

`local_stack` starts the SignalR emulator before it picks the host's port, so the emulator
only allows the default page origins (port 7071) and a browser's cross-origin negotiate
is refused. `web_stack` picks the host's port first and gives its origin to the emulator;
everything else is `local_stack`'s recipe (same settings, same host process).
"""

from __future__ import annotations

import contextlib
import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from local.azurite import free_port
from local.openai_emulator import DEFAULT_API_KEY
from local.openai_emulator import run_in_thread as openai_in_thread
from local.signalr_emulator import run_in_thread as signalr_in_thread
from local.signalr_emulator.core import EmulatorOptions

from .stack import ROOT, Stack, start_host, stop_host

__all__ = ["host_refuses_own_origin", "web_stack"]


@contextlib.contextmanager
def web_stack(storage: str, log: Path, **settings: str) -> Iterator[Stack]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    options = EmulatorOptions(cors_origins=(base, f"http://localhost:{port}"))
    with signalr_in_thread(port=0, options=options) as sig, openai_in_thread(port=0) as oai:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "Azure"))}
        env.update(json.loads((ROOT / "local.settings.json.example").read_text())["Values"])
        env.update({
            "AzureWebJobsStorage": storage,
            "AzureSignalRConnectionString": sig.connection_string,
            "AZURE_OPENAI_ENDPOINT": oai.endpoint,
            "AZURE_OPENAI_API_KEY": DEFAULT_API_KEY,
            "TABLE_PREFIX": "web" + str(free_port()),
            "JOBS_QUEUE": "webjobs" + str(free_port()),
            "PYTHONUNBUFFERED": "1",
        })  # fmt: skip
        env.update(settings)
        stack = Stack(base=base, storage=storage, signalr=sig, openai=oai, env=env)
        start_host(stack, log)
        try:
            yield stack
        finally:
            stop_host(stack)


def host_refuses_own_origin(base: str) -> bool:
    """True when the host treats a request from its own origin as cross-origin.

    The local host grants CORS from `Host.CORS` of local.settings.json(.example), which
    names port 7071 only; on any other port it answers the page's own requests that carry
    identity headers with 403 `cross_origin_identity`. Browsers send `Origin` on every POST
    and DELETE, so the page cannot work there until the host accepts its own origin.
    """
    req = urllib.request.Request(
        base + "/api/jobs?limit=1",
        headers={"Origin": base, "x-ms-client-principal-id": "origin-probe"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            return res.status == 403
    except urllib.error.HTTPError as err:
        body = err.read().decode("utf-8", "replace")
        return err.code == 403 and "cross_origin_identity" in body

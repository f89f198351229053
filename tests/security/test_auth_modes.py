"""Identity headers when authentication is off in Azure mode, and dev identity inside Azure.

- AUTH_MODE=platform without WEBSITE_AUTH_ENABLED (Easy Auth off): nothing strips forged
  x-ms-client-principal-* headers, so they are ignored: every /api/* route except health and
  the OpenAPI document answers 401.
- AUTH_MODE=dev with WEBSITE_INSTANCE_ID set (running in Azure): the settings refuse it; the
  host still starts (so the platform's health probe sees it), and every API route answers
  503 not_configured, never trusting the caller's self-named identity.
"""

from __future__ import annotations

import contextlib
import re
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.openapi import OPENAPI
from local.azurite import Azurite, free_port
from tests.e2e.stack import Stack, local_stack, own_names, spawn_host, stop_host

from .conftest import ARTIFACTS
from .hostile import assert_json_error

pytestmark = pytest.mark.e2e

FORGED = {
    "x-ms-client-principal-id": "admin",
    "x-ms-client-principal-name": "admin@example.com",
    "x-ms-client-principal-idp": "aad",
    "x-ms-client-principal": "eyJ1c2VySWQiOiJhZG1pbiJ9",
}
_SAMPLES = {"jobId": "a" * 32, "group": "team", "userId": "me", "connectionId": "conn1"}
PUBLIC = {("GET", "/api/health"), ("GET", "/api/openapi.json")}


def _operations() -> list[tuple[str, str]]:
    ops = []
    for template, methods in OPENAPI["paths"].items():
        path = re.sub(r"\{(\w+)\}", lambda m: _SAMPLES[m.group(1)], template)
        ops.extend((m.upper(), path) for m in methods)
    return ops


@contextlib.contextmanager
def _host_unchecked(stack: Stack, log: Path) -> Iterator[Stack]:
    """Start the host and wait for it to answer at all (its health may be 503)."""
    spawn_host(stack, log, append=False)
    assert stack.proc is not None
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert stack.proc.poll() is None, log.read_text(errors="replace")[-3000:]
            with contextlib.suppress(OSError):
                urllib.request.urlopen(stack.base + "/api/openapi.json", timeout=2).close()
                break
            time.sleep(0.2)
        yield stack
    finally:
        stop_host(stack)


@pytest.fixture(scope="module")
def platform_no_auth(azurite: Azurite) -> Iterator[Stack]:
    log = ARTIFACTS / "security-platform-host.log"
    with local_stack(azurite.connection_string, log, AUTH_MODE="platform") as stack:
        assert "WEBSITE_AUTH_ENABLED" not in stack.env
        yield stack


@pytest.fixture(scope="module")
def dev_in_azure(azurite: Azurite, sec_stack: Stack) -> Iterator[Stack]:
    # Its own tables, queue and task hub: sharing sec_stack's queue and hub, it could take
    # that host's jobs and orchestrations.
    env = {**sec_stack.env, "AUTH_MODE": "dev", "WEBSITE_INSTANCE_ID": "f" * 64,
           **own_names("sec")}  # fmt: skip
    stack = Stack(base=f"http://127.0.0.1:{free_port()}", storage=azurite.connection_string,
                  signalr=sec_stack.signalr, openai=sec_stack.openai, env=env)  # fmt: skip
    with _host_unchecked(stack, ARTIFACTS / "security-dev-in-azure-host.log") as running:
        yield running


@pytest.mark.parametrize(("method", "path"), _operations())
def test_platform_mode_without_easy_auth_ignores_identity_headers(
    platform_no_auth: Stack, method: str, path: str
) -> None:
    body = {"prompt": "x"} if method in ("POST", "PUT") else None
    res = platform_no_auth.request(method, path, body, user=None, headers=dict(FORGED))
    if (method, path) in PUBLIC:
        assert res.status == 200, res.body
    else:
        assert assert_json_error(res, 401)["code"] == "unauthenticated"


@pytest.mark.parametrize(("method", "path"), _operations())
def test_dev_identity_inside_azure_is_refused_with_503(
    dev_in_azure: Stack, method: str, path: str
) -> None:
    body = {"prompt": "x"} if method in ("POST", "PUT") else None
    res = dev_in_azure.request(method, path, body, user="admin")
    if path == "/api/openapi.json":
        assert res.status == 200  # a static document: no identity, no data
        return
    assert assert_json_error(res, 503)["code"] == "not_configured"
    assert "AUTH_MODE" not in str(res.body)  # the reason is logged, not told to callers
    assert "AUTH_MODE=dev is refused" in dev_in_azure.log()

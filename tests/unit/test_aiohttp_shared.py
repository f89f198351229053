"""relay/_aiohttp.py: one error mapping and one session policy for both HTTP stacks."""

from __future__ import annotations

from types import ModuleType

import aiohttp
import httpx
import httpx2
import pytest

from relay._aiohttp import LoopSession, client_timeout, map_error


@pytest.mark.parametrize("x", [httpx, httpx2], ids=["httpx", "httpx2"])
def test_aiohttp_failures_become_the_callers_own_exceptions(x: ModuleType) -> None:
    request = x.Request("POST", "http://127.0.0.1:1/x")
    cases: list[tuple[BaseException, type]] = [
        (aiohttp.ConnectionTimeoutError(), x.ConnectTimeout),
        (aiohttp.SocketTimeoutError(), x.ReadTimeout),
        (TimeoutError(), x.ReadTimeout),
        (aiohttp.ServerDisconnectedError(), x.RemoteProtocolError),
        (aiohttp.ClientPayloadError("cut"), x.RemoteProtocolError),
        (ConnectionResetError(104, "reset"), x.ReadError),
        (aiohttp.InvalidURL("bad"), x.TransportError),
    ]
    for exc, expected in cases:
        mapped = map_error(exc, request, x)
        assert type(mapped) is expected, (exc, mapped)
        assert mapped.request is request


def test_timeouts_come_from_the_request_extension() -> None:
    timeout = client_timeout({"timeout": {"pool": 1.0, "connect": 2.0, "read": 3.0}})
    assert (timeout.total, timeout.connect, timeout.sock_connect, timeout.sock_read) == (
        None,
        1.0,
        2.0,
        3.0,
    )
    assert client_timeout({}).sock_read is None


async def test_one_session_per_loop_closed_by_aclose() -> None:
    pool = LoopSession(max_connections=4, keepalive_s=1.0)
    first = pool.get()
    assert pool.get() is first and first.trust_env is False
    await pool.aclose()
    assert first.closed
    second = pool.get()
    assert second is not first
    await pool.aclose()
    with pytest.raises(ValueError):
        LoopSession(max_connections=0, keepalive_s=1.0)

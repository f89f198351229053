"""Unit tests of relay.signalr against httpx.MockTransport (the service is a boundary)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest

from relay.errors import SignalRRequestError, SignalRTransientError
from relay.signalr import (
    EMULATOR_ACCESS_KEY,
    ENTRA_SCOPE,
    SignalRClient,
    is_loopback_url,
    parse_connection_string,
)

KEY = "k" * 43 + "="
CONN = f"Endpoint=https://demo.service.signalr.net;AccessKey={KEY};Version=1.0;"
EMU = f"Endpoint=http://127.0.0.1;Port=8888;AccessKey={EMULATOR_ACCESS_KEY};Version=1.0;"
NOW = 1_700_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = NOW
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """A MockTransport handler that records requests and plays scripted answers."""

    def __init__(self, *answers: httpx.Response | Exception | int) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, int):
            return httpx.Response(answer)
        return answer


def make(
    recorder: Recorder,
    conn: str = CONN,
    clock: Clock | None = None,
    rng: float = 1.0,
    **kw: Any,
) -> tuple[SignalRClient, Clock]:
    clock = clock or Clock()
    client = SignalRClient(
        conn,
        "Stream",
        transport=httpx.MockTransport(recorder),
        clock=clock,
        sleep=clock.sleep,
        rng=lambda: rng,
        **kw,
    )
    return client, clock


def claims(token: str, key: str = KEY, aud: str | None = None) -> dict[str, Any]:
    return jwt.decode(
        token,
        key.encode(),
        algorithms=["HS256"],
        audience=aud,
        options={"verify_aud": aud is not None, "verify_exp": False, "verify_iat": False},
    )


def bearer(request: httpx.Request) -> str:
    scheme, _, token = request.headers["authorization"].partition(" ")
    assert scheme == "Bearer"
    return token


# -- connection strings ------------------------------------------------------------------


def test_parse_access_key_string() -> None:
    c = parse_connection_string(CONN)
    assert c.endpoint == "https://demo.service.signalr.net"
    assert c.access_key == KEY
    assert c.port is None
    assert c.auth_type == "accesskey"
    assert c.version == "1.0"
    assert c.client_base == c.endpoint


def test_parse_keys_case_insensitive_and_port_overrides() -> None:
    c = parse_connection_string(
        f"endpoint=http://localhost:7000/ ; ACCESSKEY={KEY};PoRt=8888;version=1.0"
    )
    assert c.endpoint == "http://localhost:8888"
    assert c.port == 8888
    assert c.access_key == KEY


def test_parse_msi_with_client_id_and_client_endpoint() -> None:
    c = parse_connection_string(
        "Endpoint=https://x.service.signalr.net;AuthType=azure.msi;ClientId=abc-123;"
        "ClientEndpoint=https://public.example.com;Version=1.0;"
    )
    assert c.auth_type == "azure.msi" and c.uses_identity
    assert c.access_key is None
    assert c.client_id == "abc-123"
    assert c.client_base == "https://public.example.com"


def test_parse_msi_without_client_id() -> None:
    c = parse_connection_string("Endpoint=https://x.service.signalr.net;AuthType=Azure.MSI;")
    assert c.uses_identity and c.client_id is None


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        (f"AccessKey={KEY};Version=1.0", "no Endpoint"),
        ("Endpoint=ftp://x;AccessKey=secretvalue", "http(s) URL"),
        ("Endpoint=https://x/path;AccessKey=secretvalue", "no path"),
        ("Endpoint=https://x;AccessKey=secretvalue;Port=abc", "Port"),
        ("Endpoint=https://x;AccessKey=secretvalue;Port=70000", "Port"),
        ("Endpoint=https://x;Version=1.0", "needs AccessKey"),
        ("Endpoint=https://x;AccessKey=secretvalue;AuthType=azure.msi", "not both"),
        ("Endpoint=https://x;AuthType=azure.app", "AuthType"),
        ("Endpoint=https://x;AccessKey=secretvalue;Version=2.0", "Version"),
        ("Endpoint=https://x;AccessKey=secretvalue;accesskey=secretvalue", "twice"),
        ("Endpoint=https://x;secretvalue", "Key=Value"),
    ],
)
def test_parse_errors_name_problem_without_the_key(text: str, fragment: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_connection_string(text)
    assert fragment in str(info.value)
    assert "secretvalue" not in str(info.value)


def test_connection_repr_hides_key() -> None:
    assert KEY not in repr(parse_connection_string(CONN))


def test_loopback_detection() -> None:
    assert is_loopback_url("http://127.0.0.1:8888")
    assert is_loopback_url("http://127.5.0.1")
    assert is_loopback_url("http://localhost")
    assert is_loopback_url("http://[::1]:8888")
    assert not is_loopback_url("https://demo.service.signalr.net")
    assert not is_loopback_url("http://10.0.0.1")


def test_emulator_key_refused_for_remote_endpoint() -> None:
    remote = f"Endpoint=https://demo.service.signalr.net;AccessKey={EMULATOR_ACCESS_KEY};"
    with pytest.raises(ValueError, match="emulator") as info:
        SignalRClient(remote, "stream")
    assert EMULATOR_ACCESS_KEY not in str(info.value)


async def test_emulator_key_allowed_on_loopback() -> None:
    rec = Recorder(202)
    client, _ = make(rec, conn=EMU)
    await client.send_to_all("t", [1])
    assert str(rec.requests[0].url).startswith("http://127.0.0.1:8888/api/hubs/stream/:send")
    await client.aclose()


def test_invalid_hub_refused() -> None:
    with pytest.raises(ValueError, match="hub"):
        SignalRClient(CONN, "bad hub")


# -- REST tokens -------------------------------------------------------------------------


async def test_rest_token_claims_and_audience() -> None:
    rec = Recorder(202)
    client, _ = make(rec)
    await client.send_to_user("alice", "delta", [{"seq": 1}])
    request = rec.requests[0]
    aud = "https://demo.service.signalr.net/api/hubs/stream/users/alice/:send"
    got = claims(bearer(request), aud=aud)
    assert got["aud"] == aud  # request URL without the query string
    assert got["iat"] == int(NOW)
    assert 300 < got["exp"] - got["iat"] <= 3600
    assert jwt.get_unverified_header(bearer(request))["alg"] == "HS256"
    with pytest.raises(jwt.InvalidSignatureError):
        claims(bearer(request), key="another-key-" + "x" * 32)
    await client.aclose()


async def test_rest_token_cached_per_audience_until_near_expiry() -> None:
    rec = Recorder(202)
    client, clock = make(rec)
    await client.send_to_user("alice", "t", [])
    await client.send_to_user("alice", "t", [])
    await client.send_to_user("bob", "t", [])
    first, second, third = (bearer(r) for r in rec.requests)
    assert first == second
    assert third != first and claims(third)["aud"].endswith("/users/bob/:send")
    clock.now += 3600 - 200  # inside the refresh margin: a new token
    await client.send_to_user("alice", "t", [])
    fourth = bearer(rec.requests[-1])
    assert fourth != first
    assert claims(fourth)["iat"] == int(clock.now)
    await client.aclose()


@dataclass
class FakeToken:
    token: str
    expires_on: int


class FakeCredential:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.calls: list[tuple[str, ...]] = []
        self.closed = False

    async def get_token(self, *scopes: str, **kwargs: Any) -> FakeToken:
        self.calls.append(scopes)
        return FakeToken(f"entra-{len(self.calls)}", int(self.clock.now) + 3600)

    async def close(self) -> None:
        self.closed = True


async def test_entra_bearer_tokens_cached_until_near_expiry() -> None:
    rec = Recorder(202)
    clock = Clock()
    cred = FakeCredential(clock)
    conn = "Endpoint=https://demo.service.signalr.net;AuthType=azure.msi;ClientId=cid;"
    client, _ = make(rec, conn=conn, clock=clock, credential=cred)
    await client.send_to_user("alice", "t", [])
    await client.send_to_group("g", "t", [])
    assert [bearer(r) for r in rec.requests] == ["entra-1", "entra-1"]
    assert cred.calls == [(ENTRA_SCOPE,)]
    clock.now += 3400
    await client.send_to_user("alice", "t", [])
    assert bearer(rec.requests[-1]) == "entra-2"
    await client.aclose()
    assert not cred.closed  # an injected credential belongs to the caller


# -- each REST call ----------------------------------------------------------------------


def _path(request: httpx.Request) -> str:
    return request.url.raw_path.decode().split("?")[0]


CALLS: list[tuple[str, Callable[[SignalRClient], Any], str, str, int]] = [
    ("all", lambda c: c.send_to_all("delta", [1]), "POST", "/api/hubs/stream/:send", 202),
    (
        "user",
        lambda c: c.send_to_user("a/b c", "delta", [1]),
        "POST",
        "/api/hubs/stream/users/a%2Fb%20c/:send",
        202,
    ),
    (
        "group",
        lambda c: c.send_to_group("g1", "delta", [1]),
        "POST",
        "/api/hubs/stream/groups/g1/:send",
        202,
    ),
    (
        "conn",
        lambda c: c.send_to_connection("c?1", "delta", [1]),
        "POST",
        "/api/hubs/stream/connections/c%3F1/:send",
        202,
    ),
    (
        "add_user",
        lambda c: c.add_user_to_group("u", "g"),
        "PUT",
        "/api/hubs/stream/users/u/groups/g",
        200,
    ),
    (
        "rm_user",
        lambda c: c.remove_user_from_group("u", "g"),
        "DELETE",
        "/api/hubs/stream/users/u/groups/g",
        204,
    ),
    (
        "rm_all",
        lambda c: c.remove_user_from_all_groups("u"),
        "DELETE",
        "/api/hubs/stream/users/u/groups",
        204,
    ),
    (
        "add_conn",
        lambda c: c.add_connection_to_group("c1", "g"),
        "PUT",
        "/api/hubs/stream/groups/g/connections/c1",
        200,
    ),
    (
        "rm_conn",
        lambda c: c.remove_connection_from_group("c1", "g"),
        "DELETE",
        "/api/hubs/stream/groups/g/connections/c1",
        200,
    ),
    ("user?", lambda c: c.user_exists("u"), "HEAD", "/api/hubs/stream/users/u", 200),
    (
        "conn?",
        lambda c: c.connection_exists("c1"),
        "HEAD",
        "/api/hubs/stream/connections/c1",
        200,
    ),
    ("group?", lambda c: c.group_exists("g"), "HEAD", "/api/hubs/stream/groups/g", 200),
    (
        "user_in_group?",
        lambda c: c.user_in_group("u", "g"),
        "HEAD",
        "/api/hubs/stream/users/u/groups/g",
        200,
    ),
    (
        "close",
        lambda c: c.close_connection("c1"),
        "DELETE",
        "/api/hubs/stream/connections/c1",
        200,
    ),
    ("health", lambda c: c.health(), "HEAD", "/api/health", 200),
]


@pytest.mark.parametrize(("name", "call", "method", "path", "status"), CALLS)
async def test_rest_call_method_path_query_auth(
    name: str, call: Callable[[SignalRClient], Any], method: str, path: str, status: int
) -> None:
    rec = Recorder(status)
    client, _ = make(rec)
    await call(client)
    request = rec.requests[0]
    assert request.method == method
    assert _path(request) == path
    assert request.url.params["api-version"] == "2022-06-01"
    assert claims(bearer(request))["aud"] == "https://demo.service.signalr.net" + path
    await client.aclose()


async def test_send_body_and_excluded_query() -> None:
    rec = Recorder(202)
    client, _ = make(rec)
    args = [{"jobId": "j1", "seq": 3, "attempt": 1, "text": "héllo \U0001f600"}]
    await client.send_to_group("g", "delta", args, excluded=["c1", "c2"])
    request = rec.requests[0]
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {"target": "delta", "arguments": args}
    assert request.url.params.get_list("excluded") == ["c1", "c2"]
    await client.aclose()


async def test_add_user_to_group_ttl_and_close_reason() -> None:
    rec = Recorder(200)
    client, _ = make(rec)
    await client.add_user_to_group("u", "g", ttl_s=600)
    await client.close_connection("c1", reason="job done")
    assert rec.requests[0].url.params["ttl"] == "600"
    assert rec.requests[1].url.params["reason"] == "job done"
    await client.aclose()


@dataclass(frozen=True)
class T:
    kind: str
    id: str


@pytest.mark.parametrize(
    ("target", "path"),
    [
        (T("user", "u1"), "/api/hubs/stream/users/u1/:send"),
        (T("group", "g1"), "/api/hubs/stream/groups/g1/:send"),
        (T("connection", "c1"), "/api/hubs/stream/connections/c1/:send"),
    ],
)
async def test_send_dispatches_on_target_kind(target: T, path: str) -> None:
    rec = Recorder(202)
    client, _ = make(rec)
    await client.send(target, "status", [{"jobId": "j"}])
    assert _path(rec.requests[0]) == path
    assert json.loads(rec.requests[0].content)["target"] == "status"
    await client.aclose()


async def test_send_unknown_kind_and_empty_ids_refused() -> None:
    client, _ = make(Recorder(202))
    with pytest.raises(ValueError, match="kind"):
        await client.send(T("all", "x"), "delta", [])
    with pytest.raises(ValueError, match="user_id"):
        await client.send_to_user("", "delta", [])
    await client.aclose()


async def test_oversized_body_refused_without_sending() -> None:
    rec = Recorder(202)
    client, _ = make(rec)
    with pytest.raises(SignalRRequestError) as info:
        await client.send_to_user("u", "delta", ["x" * (1024 * 1024)])
    assert info.value.status == 413
    assert rec.requests == []
    await client.aclose()


@pytest.mark.parametrize(
    ("call", "status", "expected"),
    [
        (lambda c: c.user_exists("u"), 200, True),
        (lambda c: c.user_exists("u"), 404, False),
        (lambda c: c.group_exists("g"), 404, False),
        (lambda c: c.connection_exists("c"), 200, True),
        (lambda c: c.user_in_group("u", "g"), 404, False),
        (lambda c: c.remove_connection_from_group("c", "g"), 404, False),
    ],
)
async def test_head_and_idempotent_remove_map_404_to_false(
    call: Callable[[SignalRClient], Any], status: int, expected: bool
) -> None:
    client, _ = make(Recorder(status))
    assert await call(client) is expected
    await client.aclose()


async def test_add_connection_to_missing_group_member_raises_404() -> None:
    client, _ = make(Recorder(404))
    with pytest.raises(SignalRRequestError) as info:
        await client.add_connection_to_group("gone", "g")
    assert info.value.status == 404
    await client.aclose()


# -- retries and error mapping -----------------------------------------------------------


async def test_5xx_retried_then_succeeds_with_bounded_jittered_backoff() -> None:
    rec = Recorder(503, 502, 202)
    client, clock = make(rec, rng=0.5, backoff_base_s=0.2, backoff_cap_s=2.0)
    await client.send_to_user("u", "t", [])
    assert len(rec.requests) == 3
    assert clock.sleeps == pytest.approx([0.1, 0.2])  # rng * min(cap, base * 2**n)
    await client.aclose()


async def test_transient_gives_up_after_max_retries() -> None:
    rec = Recorder(500)
    client, clock = make(rec, rng=1.0, max_retries=5, backoff_base_s=0.5, backoff_cap_s=2.0)
    with pytest.raises(SignalRTransientError) as info:
        await client.send_to_user("u", "t", [])
    assert info.value.status == 500 and info.value.retryable
    assert len(rec.requests) == 6
    assert clock.sleeps == pytest.approx([0.5, 1.0, 2.0, 2.0, 2.0])  # capped
    await client.aclose()


async def test_retry_after_honoured_up_to_cap() -> None:
    rec = Recorder(
        httpx.Response(429, headers={"Retry-After": "1"}),
        httpx.Response(429, headers={"Retry-After": "30"}),
        202,
    )
    client, clock = make(rec, rng=0.0, backoff_cap_s=2.0)
    await client.send_to_user("u", "t", [])
    assert clock.sleeps == pytest.approx([1.0, 2.0])
    await client.aclose()


async def test_retry_after_http_date() -> None:
    when = "Tue, 14 Nov 2023 22:13:21 GMT"  # NOW + 1 s
    rec = Recorder(httpx.Response(503, headers={"Retry-After": when}), 202)
    client, clock = make(rec, rng=0.0)
    await client.send_to_user("u", "t", [])
    assert clock.sleeps == pytest.approx([1.0])
    await client.aclose()


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.ReadError("reset"),
        httpx.RemoteProtocolError("cut"),
    ],
)
async def test_transport_errors_retried_then_mapped(exc: Exception) -> None:
    rec = Recorder(exc)
    client, clock = make(rec, max_retries=2)
    with pytest.raises(SignalRTransientError) as info:
        await client.send_to_user("u", "t", [])
    assert info.value.__cause__ is exc
    assert len(rec.requests) == 3 and len(clock.sleeps) == 2
    await client.aclose()


async def test_transport_error_then_success() -> None:
    rec = Recorder(httpx.ConnectError("refused"), 202)
    client, _ = make(rec)
    await client.send_to_user("u", "t", [])
    assert len(rec.requests) == 2
    await client.aclose()


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413])
async def test_client_errors_not_retried(status: int) -> None:
    body = {"code": "Unauthorized", "message": "token has expired", "target": None}
    rec = Recorder(httpx.Response(status, json=body))
    client, clock = make(rec)
    with pytest.raises(SignalRRequestError) as info:
        await client.send_to_user("u", "t", [])
    assert info.value.status == status and not info.value.retryable
    assert len(rec.requests) == 1 and clock.sleeps == []
    assert "(Unauthorized)" in str(info.value)
    await client.aclose()


async def test_errors_never_carry_tokens_or_keys() -> None:
    rec = Recorder(httpx.Response(401, json={"code": "x" * 200}), httpx.ConnectError("no"))
    client, _ = make(rec, max_retries=0)
    for _ in range(2):
        with pytest.raises(Exception) as info:
            await client.send_to_user("u", "t", [])
        text = str(info.value) + repr(info.value)
        assert KEY not in text and "eyJ" not in text
    await client.aclose()


async def test_health_false_on_failure_without_retry() -> None:
    rec = Recorder(503)
    client, clock = make(rec)
    assert await client.health() is False
    assert len(rec.requests) == 1 and clock.sleeps == []
    await client.aclose()


async def test_entra_credential_failure_is_transient() -> None:
    from azure.core.exceptions import ClientAuthenticationError

    class Broken(FakeCredential):
        async def get_token(self, *scopes: str, **kwargs: Any) -> FakeToken:
            raise ClientAuthenticationError("no identity endpoint")

    rec = Recorder(202)
    clock = Clock()
    conn = "Endpoint=https://demo.service.signalr.net;AuthType=azure.msi;"
    client, _ = make(rec, conn=conn, clock=clock, credential=Broken(clock), max_retries=1)
    with pytest.raises(SignalRTransientError) as info:
        await client.send_to_user("u", "t", [])
    assert isinstance(info.value.__cause__, ClientAuthenticationError)
    assert rec.requests == []
    await client.aclose()


# -- negotiate and client tokens ---------------------------------------------------------


async def test_negotiate_access_key_mode() -> None:
    client, _ = make(Recorder(200))
    info = await client.negotiate("alice", 10)
    url = "https://demo.service.signalr.net/client/?hub=stream"
    assert info["url"] == url
    got = claims(info["accessToken"], aud=url)
    assert got["asrs.s.uid"] == "alice" and got["nameid"] == "alice"
    assert got["exp"] - got["iat"] == 600
    anonymous = claims(await client.client_token(None, 1))
    assert "nameid" not in anonymous and "asrs.s.uid" not in anonymous
    await client.aclose()


async def test_negotiate_honours_port_and_client_endpoint() -> None:
    emu, _ = make(Recorder(200), conn=EMU)
    info = await emu.negotiate("u", 5)
    assert info["url"] == "http://127.0.0.1:8888/client/?hub=stream"
    assert claims(info["accessToken"], key=EMULATOR_ACCESS_KEY)["aud"] == info["url"]
    await emu.aclose()
    public, _ = make(Recorder(200), conn=CONN + "ClientEndpoint=https://edge.example.com;")
    assert (await public.negotiate(None, 5))["url"] == "https://edge.example.com/client/?hub=stream"
    await public.aclose()


async def test_negotiate_entra_mode_uses_generate_token() -> None:
    rec = Recorder(httpx.Response(200, json={"token": "service-issued"}))
    clock = Clock()
    conn = "Endpoint=https://demo.service.signalr.net;AuthType=azure.msi;"
    client, _ = make(rec, conn=conn, clock=clock, credential=FakeCredential(clock))
    info = await client.negotiate("al ice", 15)
    assert info == {
        "url": "https://demo.service.signalr.net/client/?hub=stream",
        "accessToken": "service-issued",
    }
    request = rec.requests[0]
    assert request.method == "POST"
    assert _path(request) == "/api/hubs/stream/:generateToken"
    assert request.url.params["api-version"] == "2022-11-01"
    assert request.url.params["userId"] == "al ice"
    assert request.url.params["minutesToExpire"] == "15"
    assert bearer(request) == "entra-1"
    await client.aclose()


async def test_generate_token_bad_answer_is_mapped() -> None:
    rec = Recorder(httpx.Response(200, text="not json"))
    clock = Clock()
    conn = "Endpoint=https://demo.service.signalr.net;AuthType=azure.msi;"
    client, _ = make(rec, conn=conn, clock=clock, credential=FakeCredential(clock))
    with pytest.raises(SignalRTransientError):
        await client.client_token("u", 10)
    await client.aclose()


async def test_client_token_minutes_validated() -> None:
    client, _ = make(Recorder(200))
    for bad in (0, 1441, True):
        with pytest.raises(ValueError, match="minutes"):
            await client.client_token("u", bad)
    await client.aclose()


async def test_async_context_manager_closes_pool() -> None:
    async with SignalRClient(CONN, "stream", transport=httpx.MockTransport(Recorder(202))) as c:
        await c.send_to_all("t", [])
    with pytest.raises(RuntimeError):
        await c.send_to_all("t", [])

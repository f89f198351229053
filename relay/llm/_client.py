"""Azure OpenAI chat completions, streamed, as `TextDelta`s and one `StreamEnd`.

api_version "v1" (default) talks to `{endpoint}/openai/v1/` through `AsyncOpenAI` with the
deployment name as model; a dated api_version uses `AsyncAzureOpenAI` and the
`/openai/deployments/{deployment}/...?api-version=` path. Authentication is an API key or a
Microsoft Entra ID bearer token provider. The SDK's own retries are off: the orchestrator owns
retries, and needs each failure typed (see `_errors.map_llm_error`).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import httpx2
from openai import AsyncAzureOpenAI, AsyncOpenAI
from openai._base_client import make_request_options
from openai._constants import RAW_RESPONSE_HEADER

from ..errors import LLMContentFiltered, LLMUnavailable
from ._errors import FOREIGN_ERRORS, map_llm_error
from ._events import StreamEnd, StreamEvent, TextDelta, Usage
from ._sse import Chunk, SSEDecoder, read_chunk
from ._transport import AiohttpStreamTransport

if TYPE_CHECKING:
    from ..settings import Settings

__all__ = ["COGNITIVE_SCOPE", "LLMClient"]

COGNITIVE_SCOPE = "https://cognitiveservices.azure.com/.default"
_DATED = re.compile(r"\d{4}-\d{2}-\d{2}(-preview)?\Z")
# Keys the caller may not set: they would change the wire protocol this module parses.
_RESERVED = frozenset({"model", "stream", "stream_options", "n"})
_DRAIN_TIMEOUT_S = 0.1  # the SDK's own bound on reading past [DONE]
_PING_ERRORS: tuple[type[BaseException], ...] = (httpx.HTTPError, *FOREIGN_ERRORS)
# Keys of a request the SDK's `create` would send as given: plain JSON, no aliases, no files
# (its `async_maybe_transform` pass is then the identity; see `_plain_body`). In the order
# `create` writes them, so the body's bytes are the same as well.
_PLAIN_KEYS = ("messages", "max_completion_tokens", "max_tokens", "stream_options", "temperature")
_PLAIN_REQUEST_KEYS = frozenset(_PLAIN_KEYS) - {"stream_options"}  # that one is set here
_PLAIN_MESSAGE_KEYS = frozenset({"role", "content", "name"})


def _plain_body(model: str, request: Mapping[str, Any]) -> dict[str, Any] | None:
    """The JSON body `chat.completions.create(model=, stream=True, stream_options=, **request)`
    sends, built without the SDK's type-directed transform (about 0.4 ms of CPU per request,
    on the way to the first token); None when `request` holds anything that transform might
    change (other keys, structured message content), and the SDK's own path is taken.
    """
    if not set(request) <= _PLAIN_REQUEST_KEYS:
        return None
    messages = request.get("messages")
    if not isinstance(messages, list):
        return None
    for message in messages:
        if not (
            isinstance(message, dict)
            and set(message) <= _PLAIN_MESSAGE_KEYS
            and all(type(v) is str for v in message.values())
        ):
            return None
    fields = {**request, "stream_options": {"include_usage": True}}
    body: dict[str, Any] = {"model": model, "stream": True}
    body.update((key, fields[key]) for key in _PLAIN_KEYS if key in fields)
    return body


class LLMClient:
    """One Azure OpenAI deployment; `stream(request)` yields the answer as it is generated."""

    def __init__(
        self,
        endpoint: str,
        deployment: str,
        api_version: str = "v1",
        api_key: str | None = None,
        credential: Any = None,
        *,
        client_id: str | None = None,
        timeout_s: float = 60.0,
        stall_timeout_s: float = 30.0,
        max_retries: int = 0,
        ping_timeout_s: float = 5.0,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("Azure OpenAI endpoint must be an http(s) URL")
        if not deployment:
            raise ValueError("Azure OpenAI deployment name is empty")
        if api_version != "v1" and not _DATED.match(api_version):
            raise ValueError("api_version must be 'v1' or a date such as 2024-10-21")
        if timeout_s <= 0 or stall_timeout_s <= 0 or max_retries < 0:
            raise ValueError("timeouts must be positive and max_retries not negative")
        self.endpoint = endpoint.rstrip("/")
        self.deployment = deployment
        self.api_version = api_version
        self._api_key = api_key
        self._stall_timeout_s = stall_timeout_s
        self._ping_timeout_s = ping_timeout_s
        self._owned_credential: Any = None
        self._token_provider: Callable[[], Awaitable[str]] | None = None
        if api_key is None:
            from azure.identity.aio import (
                DefaultAzureCredential,
                ManagedIdentityCredential,
                get_bearer_token_provider,
            )

            if credential is None:
                credential = (
                    ManagedIdentityCredential(client_id=client_id)
                    if client_id
                    else DefaultAzureCredential()
                )
                self._owned_credential = credential
            self._token_provider = get_bearer_token_provider(credential, COGNITIVE_SCOPE)
        # The SDK's requests go through aiohttp (see _transport: per-chunk CPU); the
        # SDK's own timeout still applies per request (connect, read, pool).
        http_client = httpx2.AsyncClient(
            transport=transport or AiohttpStreamTransport(),
            timeout=timeout_s,
            follow_redirects=True,
        )
        self._client: AsyncOpenAI
        if api_version == "v1":
            self._client = AsyncOpenAI(
                http_client=http_client,
                base_url=f"{self.endpoint}/openai/v1/",
                api_key=api_key if api_key is not None else self._token_provider,
                timeout=timeout_s,
                max_retries=max_retries,
            )
        elif api_key is not None:
            self._client = AsyncAzureOpenAI(
                http_client=http_client,
                azure_endpoint=self.endpoint,
                azure_deployment=deployment,
                api_version=api_version,
                api_key=api_key,
                timeout=timeout_s,
                max_retries=max_retries,
            )
        else:
            self._client = AsyncAzureOpenAI(
                http_client=http_client,
                azure_endpoint=self.endpoint,
                azure_deployment=deployment,
                api_version=api_version,
                azure_ad_token_provider=self._token_provider,
                timeout=timeout_s,
                max_retries=max_retries,
            )

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> LLMClient:
        return cls(
            settings.openai_endpoint,
            settings.openai_deployment,
            settings.openai_api_version,
            settings.openai_api_key,
            client_id=settings.azure_client_id,
            **({"stall_timeout_s": float(settings.llm_stall_timeout_seconds)} | kwargs),
        )

    async def aclose(self) -> None:
        await self._client.close()
        if self._owned_credential is not None:
            await self._owned_credential.close()

    async def __aenter__(self) -> LLMClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def stream(self, request: Mapping[str, Any]) -> AsyncIterator[StreamEvent]:
        """Stream one chat completion. `request` holds messages, max_tokens or
        max_completion_tokens, temperature (relay.jobs.build_chat_request).

        Raises LLMContentFiltered after yielding the text before a content-filter stop;
        LLMUnavailable when the stream stalls for `stall_timeout_s` or ends with no finish.
        """
        reserved = _RESERVED & set(request)
        if reserved:
            raise ValueError(f"request may not set {', '.join(sorted(reserved))}")
        finish: str | None = None
        usage: Usage | None = None
        async with contextlib.AsyncExitStack() as stack:
            try:
                http = await self._open(request, stack)
            except FOREIGN_ERRORS as exc:
                raise map_llm_error(exc) from exc
            chunks = self._chunks(http)
            await stack.enter_async_context(contextlib.aclosing(chunks))
            async for chunk in chunks:
                if chunk.usage is not None:
                    usage = chunk.usage
                if finish is not None:
                    continue  # only usage may follow the finish
                if chunk.text:
                    yield TextDelta(chunk.text)
                if chunk.finish_reason:
                    finish = chunk.finish_reason
                    if finish == "content_filter":
                        raise LLMContentFiltered("the answer was stopped by the content filter")
        if finish is None:
            raise LLMUnavailable("the Azure OpenAI stream ended before the answer finished")
        yield StreamEnd(finish, usage)

    async def _open(
        self, request: Mapping[str, Any], stack: contextlib.AsyncExitStack
    ) -> httpx2.Response:
        """Send the request; the answer's body is left unread (closed by `stack`).

        Both ways, the SDK builds, authenticates and sends the request (its headers, URL,
        Azure deployment routing) and raises APIStatusError for a non-2xx answer, but leaves
        the body unread, so the SSE is parsed here with no pydantic model per chunk (_sse).
        A plain request (`_plain_body`) goes through the client's `post` as `create` would
        send it, with the same options (streamed raw response, bearer auth); anything else
        through `create` itself.
        """
        body = _plain_body(self.deployment, request)
        if body is None:
            streaming = self._client.chat.completions.with_streaming_response.create(
                model=self.deployment,
                stream=True,
                stream_options={"include_usage": True},
                **request,
            )
            answer: httpx2.Response = (await stack.enter_async_context(streaming)).http_response
            return answer
        http: httpx2.Response = await self._client.post(
            "/chat/completions",
            cast_to=httpx2.Response,  # the raw answer, as the streaming wrapper gets it
            body=body,
            options=make_request_options(
                extra_headers={RAW_RESPONSE_HEADER: "stream"}, security={"bearer_auth": True}
            ),
            stream=True,
        )
        stack.push_async_callback(http.aclose)
        return http

    async def _chunks(self, http: httpx2.Response) -> AsyncGenerator[Chunk, None]:
        """The body's chunks until `[DONE]` or its end. A read that stalls for the stall
        timeout, or fails, raises a mapped LLMError unless a finish was already seen."""
        decoder = SSEDecoder()
        body = http.aiter_bytes().__aiter__()
        finished = False
        while not decoder.done:
            try:
                async with asyncio.timeout(self._stall_timeout_s):
                    data = await anext(body)
            except StopAsyncIteration:
                return
            except FOREIGN_ERRORS as exc:
                if finished:
                    return  # the answer is complete; only the usage chunk was lost
                raise map_llm_error(exc) from exc
            for event in decoder.feed(data):
                try:
                    chunk = read_chunk(event)
                except FOREIGN_ERRORS as exc:
                    if finished:
                        return
                    raise map_llm_error(exc) from exc
                finished = finished or chunk.finish_reason is not None
                yield chunk
        # [DONE]: read the (normally empty) rest briefly so an HTTP/1.1 connection can be
        # reused, as the SDK does; closing an unread response drops the connection.
        with contextlib.suppress(StopAsyncIteration, *FOREIGN_ERRORS):
            async with asyncio.timeout(_DRAIN_TIMEOUT_S):
                while True:
                    await anext(body)

    async def ping(self) -> bool:
        """Readiness: an authenticated `GET {endpoint}/openai/v1/models` answers 200.

        The v1 models list is cheap, needs the same credentials as a completion and exists on
        every resource whatever api_version the app streams with. Never raises.
        """
        try:
            if self._api_key is not None:
                headers = {"api-key": self._api_key}
            else:
                assert self._token_provider is not None
                headers = {"Authorization": f"Bearer {await self._token_provider()}"}
            async with httpx.AsyncClient(timeout=self._ping_timeout_s) as http:
                response = await http.get(f"{self.endpoint}/openai/v1/models", headers=headers)
        except _PING_ERRORS:
            return False
        return response.status_code == 200

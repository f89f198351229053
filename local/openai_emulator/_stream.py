"""Writing a planned answer out: the SSE stream and the non-streaming body, with faults.

Raw ASGI so a `cut` can end the response without its terminating chunk (the server
then closes the connection), and so a client disconnect or the server stopping ends
a paced or stalled stream at once instead of sleeping on.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ._plan import Plan
from ._stats import Stats
from ._timeline import StreamMarks
from ._wire import SAFE_FILTER, chunk, completion, filtered_results, prompt_filter_results, sse

__all__ = ["answer_response", "stream_response"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _race(work: Awaitable[bool], receive: Receive, stopping: asyncio.Event) -> bool:
    """Run `work`; False if the client went away or the server is stopping first."""
    tasks = [
        asyncio.ensure_future(work),
        asyncio.ensure_future(_until_disconnect(receive)),
        asyncio.ensure_future(stopping.wait()),
    ]
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    writer = tasks[0]
    if writer in done and not writer.cancelled() and writer.exception() is None:
        return bool(writer.result())
    return False


def _start(status: int, headers: dict[str, str]) -> Message:
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    return {"type": "http.response.start", "status": status, "headers": raw}


def stream_response(
    plan: Plan,
    meta: dict[str, Any],
    include_usage: bool,
    headers: dict[str, str],
    stats: Stats,
    stopping: asyncio.Event,
    marks: StreamMarks | None = None,
) -> ASGIApp:
    """The SSE answer; with `marks`, stamp `(wall time, deltas written)` after each write."""
    tokens, due, n = plan.tokens, plan.due, len(plan.tokens)
    fault = plan.fault
    fault_at = min(plan.control.after, n) if fault in ("stall", "cut") else None
    ttft = (plan.pacing.ttft_ms or 0.0) / 1000.0

    def content(token: str) -> bytes:
        return sse(chunk(meta, delta={"content": token}, filter_results=SAFE_FILTER,
                         include_usage=include_usage))  # fmt: skip

    async def write(send: Send) -> bool:
        loop = asyncio.get_running_loop()
        start = loop.time()
        shift = 0.0  # added to every due time after a stall
        opening = {"choices": [], "created": 0, "id": "", "model": "", "object": "",
                   "prompt_filter_results": prompt_filter_results()}  # fmt: skip
        await send({"type": "http.response.body", "body": sse(opening), "more_body": True})
        role = sse(chunk(meta, delta={"content": "", "refusal": None, "role": "assistant"},
                         include_usage=include_usage))  # fmt: skip
        i = 0
        while True:
            if i == fault_at:
                stats.faults[str(fault)] += 1
                if fault == "cut":
                    if i == 0:
                        await send({"type": "http.response.body", "body": role, "more_body": True})
                    return False
                await asyncio.sleep(plan.control.seconds)  # a stall: then carry on
                shift += plan.control.seconds
            if i >= n:
                break
            await asyncio.sleep(max(0.0, start + due[i] + shift - loop.time()))
            # Every delta already due goes in one write: a burst, or a late server
            # catching up (as a busy service delivers several deltas at once).
            now = loop.time() - start - shift
            j = i + 1
            while j < n and due[j] <= max(now, due[i]) and j != fault_at:
                j += 1
            body = b"".join(content(t) for t in tokens[i:j])
            await send({"type": "http.response.body",
                        "body": (role + body) if i == 0 else body, "more_body": True})  # fmt: skip
            stats.tokens += j - i
            if marks is not None:
                marks.add(j)
            i = j
        tail = b""
        if n == 0:
            await asyncio.sleep(max(0.0, start + ttft + shift - loop.time()))
            tail += role
        filters = filtered_results() if plan.finish_reason == "content_filter" else {}
        tail += sse(chunk(meta, delta={}, finish_reason=plan.finish_reason,
                          filter_results=filters, include_usage=include_usage))  # fmt: skip
        if plan.finish_reason == "content_filter":
            stats.faults["content_filter"] += 1
        if include_usage:
            tail += sse(chunk(meta, usage_value=plan.usage, include_usage=True))
        tail += sse("[DONE]")
        await send({"type": "http.response.body", "body": tail, "more_body": True})
        return True

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(_start(200, {**headers, "content-type": "text/event-stream; charset=utf-8"}))
        stats.streams += 1
        stats.active_streams += 1
        try:
            done = await _race(write(send), receive, stopping)
        finally:
            stats.active_streams -= 1
            if marks is not None:
                marks.done = True
        if done:
            stats.streams_completed += 1
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        # Otherwise return without the terminating chunk: the connection is closed.

    return app


def answer_response(
    plan: Plan,
    meta: dict[str, Any],
    headers: dict[str, str],
    stats: Stats,
    stopping: asyncio.Event,
) -> ASGIApp:
    """The non-streaming answer, sent when generation would have finished."""
    body = json.dumps(completion(meta, plan.text, plan.finish_reason, plan.usage)).encode()
    if plan.finish_reason == "content_filter":
        stats.faults["content_filter"] += 1
    finished = plan.due[-1] if plan.due else (plan.pacing.ttft_ms or 0.0) / 1000.0

    async def wait() -> bool:
        if plan.fault == "stall":
            stats.faults["stall"] += 1
            await asyncio.sleep(plan.control.seconds)
        await asyncio.sleep(finished)
        return True

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if not await _race(wait(), receive, stopping):
            return
        head = {**headers, "content-type": "application/json", "content-length": str(len(body))}
        await send(_start(200, head))
        if plan.fault == "cut":  # half the body, then the connection closes
            stats.faults["cut"] += 1
            await send({"type": "http.response.body", "body": body[: len(body) // 2],
                        "more_body": True})  # fmt: skip
            return
        stats.tokens += len(plan.tokens)
        await send({"type": "http.response.body", "body": body, "more_body": False})

    return app

"""``POST /api/chat``: the assistant's answer as JSON, or as server-sent events while it is produced.

Both modes run the question in a task of its own and cancel it when the client goes away (the ASGI
``http.disconnect`` message), so an abandoned question sends no further model request.

SSE (``stream=true``, ``text/event-stream``; the W3C/WHATWG "server-sent events" format:
``event: <name>`` and ``data: <json>`` lines, a blank line after each event): the events of
``Assistant.ask_stream`` as they happen: ``tool_call``, ``tool_result``, ``chunk`` (``{"text"}``)...
then ``done`` (the JSON mode's body). The response starts with the run's first event, so an LLM
provider that cannot be used is still an HTTP 503 (``ModelProviderError``); a failure after
that is an ``event: error`` with ``{"detail"}`` and ends the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import Response, StreamingResponse

from market_liquidity_monitor.agent.assistant import Assistant, ModelProviderError

log = logging.getLogger(__name__)

T = TypeVar("T")

_END = object()


class ClientGone(Exception):
    """The client closed the connection before the answer was ready."""


async def _disconnected(request: Request) -> None:
    """Return once the client has disconnected (ASGI ``http.disconnect``)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def until_disconnect(request: Request, work: Awaitable[T]) -> T:
    """``await work``, cancelled (raising ``ClientGone``) as soon as the client disconnects."""
    task = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()
        raise
    finally:
        watch.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
    raise ClientGone


class _Pump:
    """Runs ``ask_stream`` in its own task (so the run's cancel scopes stay in one task) and hands
    its events over a queue: ``(event, None)``, ``(None, exception)`` or ``_END``."""

    def __init__(self, events: AsyncIterator[dict[str, Any]]):
        self._events = events
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        try:
            async with contextlib.aclosing(self._events) as events:
                async for ev in events:
                    await self._queue.put((ev, None))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # handed to the consumer, which answers with it
            await self._queue.put((None, exc))
        await self._queue.put(_END)

    async def get(self) -> Any:
        return await self._queue.get()

    async def close(self) -> None:
        if not self._task.done():
            self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, default=str)}\n\n"


async def chat_response(
    request: Request, assistant: Assistant, message: str, session_id: str | None, stream: bool
):
    """The response of ``POST /api/chat`` (see the module docstring). Raises ``ModelProviderError``
    (the app answers 503) when the provider fails before the first event."""
    if not stream:
        try:
            res = await until_disconnect(request, assistant.ask(message, session_id))
        except ClientGone:
            log.info("chat: the client disconnected; the run was cancelled")
            return Response(status_code=499)  # nginx's "client closed request"; nobody reads it
        return res.as_dict()

    pump = _Pump(assistant.ask_stream(message, session_id))
    try:
        first = await until_disconnect(request, pump.get())
    except ClientGone:
        await pump.close()
        log.info("chat: the client disconnected before the first event; the run was cancelled")
        return Response(status_code=499)
    except asyncio.CancelledError:
        await pump.close()
        raise
    if first is _END:  # pragma: no cover - a run always ends with done
        await pump.close()
        return Response(status_code=204)
    ev, exc = first
    if exc is not None:
        await pump.close()
        raise exc

    async def events() -> AsyncIterator[str]:
        try:
            item = (ev, None)
            while item is not _END:
                data, err = item
                if err is not None:
                    detail = str(err) if isinstance(err, ModelProviderError) else "internal error"
                    if not isinstance(err, ModelProviderError):
                        log.error("chat stream failed", exc_info=err)
                    yield _sse("error", {"detail": detail})
                    return
                yield _sse(data["event"], data["data"])
                item = await pump.get()
        finally:
            await pump.close()  # the client went away (cancelled) or the run ended

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

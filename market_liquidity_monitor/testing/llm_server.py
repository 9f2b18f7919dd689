"""A loopback OpenAI-compatible LLM server (Chat Completions), scriptable per test.

It speaks the wire protocol a real provider does, so the assistant's provider path (pydantic-ai's
``OpenAIChatModel`` on the OpenAI SDK) is exercised end to end with nothing mocked:

- ``POST /v1/chat/completions`` with the request body of the OpenAI API reference ("Create chat
  completion": ``model``, ``messages`` with ``role`` system/user/assistant/tool, ``tools`` of
  ``{"type": "function", "function": {"name", "description", "parameters"}}``, ``stream``,
  ``stream_options.include_usage``);
- a non-streamed answer is one ``chat.completion`` object (``choices[0].message`` with ``content``
  and/or ``tool_calls`` of ``{"id", "type": "function", "function": {"name", "arguments"}}``,
  ``finish_reason`` ``"stop"`` or ``"tool_calls"``, and ``usage``);
- a streamed answer is server-sent events (``text/event-stream``), one ``data: <chunk>`` per
  ``chat.completion.chunk`` with ``choices[0].delta`` carrying ``content`` pieces or
  ``tool_calls`` fragments (``index``, then ``id``/``function.name`` once and ``function.arguments``
  in pieces), a last chunk with ``finish_reason``, a usage chunk with empty ``choices`` when
  ``include_usage`` was asked, and ``data: [DONE]`` (OpenAI API reference, "The chat completion
  chunk object" and "Streaming");
- errors are ``{"error": {"message", "type", "param", "code"}}`` with the HTTP status, and 429/503
  may carry ``Retry-After`` (seconds, RFC 9110 section 10.2.3).

Token usage is an estimate (4 characters per token, OpenAI's rule of thumb for English text),
enough for usage limits to bite; it is not a tokenizer.

A test gives the server a *model*: a function from the request (``ChatTurn``) to a reply (``Text``,
``Calls``, ``Fail``, ``Hang``). Ready-made models: ``tool_then_answer`` (calls scripted tools, then
answers from the tool results it received), ``scripted`` (one reply per turn of the question),
``looping`` (calls a tool forever), ``hanging`` (never answers), ``failing`` (HTTP errors, then
another model). Every request is recorded in ``server.requests`` (arrival time, body, headers, and
when the client went away), so a test can assert what reached the provider and when.

The server runs its own event loop in a daemon thread, so it serves sync tests, async tests and
subprocesses alike::

    with LoopbackLLM(tool_then_answer("order_book", {"symbol": "BTC"})) as llm:
        settings = Settings(agent=AgentSettings(model="openai:test", base_url=llm.base_url))
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

CHARS_PER_TOKEN = 4


# ------------------------------------------------------------------------------------ requests


@dataclass
class RecordedRequest:
    """One request as the server received it; ``t`` and ``disconnected_at`` are ``time.monotonic()``."""

    index: int
    t: float
    path: str
    body: dict[str, Any]
    headers: dict[str, str]
    status: int | None = None  # the status answered (None while it is being answered, or for a hang)
    disconnected_at: float | None = None  # when the client closed the connection before the answer ended
    finished_at: float | None = None  # when the answer's last byte was written


@dataclass
class ChatTurn:
    """The request a model answers, with the views of it a scripted model needs."""

    index: int  # 0-based number of the request on this server
    body: dict[str, Any]

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages") or [])

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream"))

    @property
    def tool_names(self) -> list[str]:
        """Names of the function tools the request offers."""
        return [
            (t.get("function") or {}).get("name")
            for t in self.body.get("tools") or []
            if t.get("type") == "function"
        ]

    def tool_schema(self, name: str) -> dict[str, Any] | None:
        for t in self.body.get("tools") or []:
            fn = t.get("function") or {}
            if fn.get("name") == name:
                return fn.get("parameters")
        return None

    def _since_last_user(self) -> list[dict[str, Any]]:
        msgs = self.messages
        last = max((i for i, m in enumerate(msgs) if m.get("role") == "user"), default=-1)
        return msgs[last + 1 :]

    @property
    def user_prompt(self) -> str:
        """The text of the last user message."""
        for m in reversed(self.messages):
            if m.get("role") == "user":
                c = m.get("content")
                if isinstance(c, list):
                    return " ".join(p.get("text", "") for p in c if isinstance(p, dict))
                return str(c or "")
        return ""

    @property
    def turn(self) -> int:
        """How many assistant messages the current question already has (0 on its first request)."""
        return sum(1 for m in self._since_last_user() if m.get("role") == "assistant")

    @property
    def tool_results(self) -> list[dict[str, Any]]:
        """The tool messages answering the last assistant message: ``{"name", "tool_call_id",
        "content", "json"}`` (``json`` is the parsed content, or None when it is not JSON)."""
        tail = self._since_last_user()
        last_call = max((i for i, m in enumerate(tail) if m.get("role") == "assistant"), default=None)
        if last_call is None:
            return []
        names = {
            c.get("id"): (c.get("function") or {}).get("name")
            for c in tail[last_call].get("tool_calls") or []
        }
        out = []
        for m in tail[last_call + 1 :]:
            if m.get("role") != "tool":
                continue
            content = m.get("content")
            if isinstance(content, list):
                content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
            try:
                parsed = json.loads(content) if isinstance(content, str) else None
            except ValueError:
                parsed = None
            out.append(
                {
                    "name": names.get(m.get("tool_call_id")),
                    "tool_call_id": m.get("tool_call_id"),
                    "content": content,
                    "json": parsed,
                }
            )
        return out


# ------------------------------------------------------------------------------------- replies


@dataclass
class Text:
    """A text answer, streamed in ``pieces`` (word boundaries) over ``turn_s`` seconds (a piece every
    ``turn_s / pieces``); not streamed: one message after ``turn_s``."""

    text: str
    pieces: int = 1
    turn_s: float = 0.0


@dataclass
class Call:
    """One tool call; ``args`` is a dict (sent as JSON) or a raw string (sent as is: malformed JSON)."""

    name: str
    args: dict[str, Any] | str = field(default_factory=dict)


@dataclass
class Calls:
    """Tool calls (with optional leading ``text``) after ``turn_s`` seconds."""

    calls: list[Call]
    text: str | None = None
    turn_s: float = 0.0


@dataclass
class Fail:
    """An HTTP error: ``status`` with an OpenAI error body; ``retry_after`` sets ``Retry-After``."""

    status: int = 500
    message: str = "The server had an error while processing your request."
    retry_after: float | str | None = None


@dataclass
class Hang:
    """Accept the request and never answer (until the client goes away or the server stops)."""


Reply = Text | Calls | Fail | Hang
Model = Callable[[ChatTurn], Reply]


# --------------------------------------------------------------------------------------- models


def _offered(turn: ChatTurn, name: str) -> Fail | None:
    if name in turn.tool_names:
        return None
    return Fail(400, f"tool {name!r} is not in the request's tools ({', '.join(turn.tool_names)})")


def tool_then_answer(
    calls: Call | Sequence[Call] | str,
    args: dict[str, Any] | str | None = None,
    answer: Callable[[list[dict[str, Any]]], str] | str | None = None,
    *,
    turn_s: float = 0.0,
    pieces: int = 1,
) -> Model:
    """A tool-calling model: on the first turn of a question it calls ``calls`` (one ``Call``, a list
    of them, or a tool name with ``args``), each of which must be among the request's tools; on the
    next turn it answers with ``answer(tool_results)`` (``ChatTurn.tool_results``), by default a
    sentence quoting each tool's result. Each turn takes ``turn_s`` seconds; the answer is streamed
    in ``pieces``."""
    if isinstance(calls, str):
        calls = [Call(calls, args if args is not None else {})]
    elif isinstance(calls, Call):
        calls = [calls]
    plan = list(calls)

    def model(turn: ChatTurn) -> Reply:
        if turn.turn == 0:
            for c in plan:
                if (bad := _offered(turn, c.name)) is not None:
                    return bad
            return Calls(plan, turn_s=turn_s)
        results = turn.tool_results
        if callable(answer):
            text = answer(results)
        elif isinstance(answer, str):
            text = answer
        else:
            text = " ".join(f"{r['name']} returned {r['content']}." for r in results)
        return Text(text, pieces=pieces, turn_s=turn_s)

    return model


def scripted(*steps: Reply | Callable[[ChatTurn], Reply]) -> Model:
    """Reply ``steps[n]`` on turn ``n`` of each question (``ChatTurn.turn``); the last step repeats.
    A step may be a function of the request. Tool calls are checked against the request's tools."""
    if not steps:
        raise ValueError("scripted() needs at least one step")

    def model(turn: ChatTurn) -> Reply:
        step = steps[min(turn.turn, len(steps) - 1)]
        reply = step(turn) if callable(step) else step
        if isinstance(reply, Calls):
            for c in reply.calls:
                if (bad := _offered(turn, c.name)) is not None:
                    return bad
        return reply

    return model


def looping(name: str, args: dict[str, Any] | str, turn_s: float = 0.0) -> Model:
    """A model that never stops calling ``name`` with ``args``."""

    def model(turn: ChatTurn) -> Reply:
        return _offered(turn, name) or Calls([Call(name, args)], turn_s=turn_s)

    return model


def hanging() -> Model:
    """A model that accepts every request and never answers."""
    return lambda turn: Hang()


def failing(status: int = 500, *, times: int | None = None, retry_after: float | str | None = None,
            then: Model | None = None, message: str | None = None) -> Model:  # fmt: skip
    """Answer HTTP ``status`` (with ``Retry-After: retry_after`` if given) to the first ``times``
    requests (every request when None), then let ``then`` answer."""
    count = itertools.count()
    fail = Fail(status, message or Fail.message, retry_after)

    def model(turn: ChatTurn) -> Reply:
        if times is None or next(count) < times or then is None:
            return fail
        return then(turn)

    return model


# --------------------------------------------------------------------------------------- server


async def _pause(request: web.Request, seconds: float) -> None:
    """Sleep ``seconds``; raise ``ConnectionResetError`` as soon as the client has gone away."""
    deadline = time.monotonic() + seconds
    while True:
        transport = request.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("the client closed the connection")
        left = deadline - time.monotonic()
        if left <= 0:
            return
        await asyncio.sleep(min(left, 0.02))


def _tokens(text: str) -> int:
    return max(1, len(text) // CHARS_PER_TOKEN)


def _split(text: str, pieces: int) -> list[str]:
    """``text`` in ``pieces`` consecutive parts cut at spaces (fewer when it has fewer words)."""
    words = text.split(" ")
    pieces = max(1, min(pieces, len(words)))
    size, extra = divmod(len(words), pieces)
    parts, start = [], 0
    for i in range(pieces):
        end = start + size + (1 if i < extra else 0)
        parts.append(" ".join(words[start:end]))
        start = end
    return [p + (" " if i < len(parts) - 1 else "") for i, p in enumerate(parts)]


class LoopbackLLM:
    """The server (see the module docstring). ``start()`` binds a free port on 127.0.0.1 and
    returns ``base_url`` (``http://127.0.0.1:<port>/v1``); ``stop()`` closes every connection.
    ``model`` may be replaced between requests."""

    def __init__(self, model: Model | None = None, model_name: str = "loopback-model"):
        self.model: Model = model or (lambda turn: Text("Hello from the loopback model."))
        self.model_name = model_name
        self.requests: list[RecordedRequest] = []
        self.port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._ids = itertools.count(1)

    # --------------------------------------------------------------- lifecycle

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("the loopback LLM server is not started")
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout_s: float = 10.0) -> str:
        if self._thread is not None:
            return self.base_url
        self._ready.clear()
        self._thread = threading.Thread(target=self._serve, name="loopback-llm", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise RuntimeError("the loopback LLM server did not start")
        if self._start_error is not None:
            raise RuntimeError(f"the loopback LLM server failed to start: {self._start_error!r}")
        return self.base_url

    def stop(self, timeout_s: float = 10.0) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if self._stopping is not None:
            loop.call_soon_threadsafe(self._stopping.set)
        thread.join(timeout_s)
        self._thread = self._loop = None

    def __enter__(self) -> LoopbackLLM:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> LoopbackLLM:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.stop)

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:  # reported to start() instead of dying silently
            self._start_error = exc
            self._ready.set()
        finally:
            loop.close()

    async def _main(self) -> None:
        self._stopping = asyncio.Event()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port or 0, reuse_address=True)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self._ready.set()
        await self._stopping.wait()
        await self._runner.cleanup()

    # --------------------------------------------------------------- views for tests

    def wait_for_requests(self, n: int, timeout_s: float = 30.0) -> bool:
        """Block until at least ``n`` requests arrived; False on timeout."""
        deadline = time.monotonic() + timeout_s
        while len(self.requests) < n:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def requests_after(self, t: float) -> list[RecordedRequest]:
        """Requests that arrived after ``time.monotonic()`` value ``t``."""
        return [r for r in self.requests if r.t > t]

    # --------------------------------------------------------------- handlers

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": self.model_name, "object": "model"}]})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        rec = RecordedRequest(
            index=len(self.requests),
            t=time.monotonic(),
            path=request.path,
            body={},
            headers=dict(request.headers),
        )
        self.requests.append(rec)
        try:
            rec.body = json.loads(raw)
        except ValueError:
            rec.status = 400
            return self._error(400, "the request body is not JSON", None)
        turn = ChatTurn(rec.index, rec.body)
        try:
            reply = self.model(turn)
        except Exception as exc:  # a bug in the test's model: a visible 500, not a hung test
            reply = Fail(500, f"the scripted model raised {exc!r}")
        if isinstance(reply, Fail):
            rec.status = reply.status
            rec.finished_at = time.monotonic()
            return self._error(reply.status, reply.message, reply.retry_after)
        if isinstance(reply, Hang):
            await self._hang(request, rec)
            return web.Response(status=504)  # only reached when the server stops
        prompt_tokens = _tokens(raw.decode(errors="replace"))
        if not turn.stream:
            await asyncio.sleep(reply.turn_s)
            rec.status = 200
            resp = web.json_response(self._completion(rec, reply, prompt_tokens))
            rec.finished_at = time.monotonic()
            return resp
        return await self._stream(request, rec, turn, reply, prompt_tokens)

    def _error(self, status: int, message: str, retry_after: float | str | None) -> web.Response:
        kind = {
            400: "invalid_request_error",
            401: "authentication_error",
            404: "not_found_error",
            429: "rate_limit_error",
        }.get(status, "server_error")
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        return web.json_response(
            {"error": {"message": message, "type": kind, "param": None, "code": None}},
            status=status,
            headers=headers,
        )

    async def _hang(self, request: web.Request, rec: RecordedRequest) -> None:
        assert self._stopping is not None
        while not self._stopping.is_set():
            transport = request.transport
            if transport is None or transport.is_closing():
                rec.disconnected_at = time.monotonic()
                return
            await asyncio.sleep(0.02)

    def _base(self, rec: RecordedRequest, obj: str) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-loopback-{rec.index}",
            "object": obj,
            "created": int(time.time()),
            "model": rec.body.get("model") or self.model_name,
        }

    @staticmethod
    def _wire_calls(rec: RecordedRequest, calls: list[Call]) -> list[dict[str, Any]]:
        return [
            {
                "id": f"call_{rec.index}_{i}",
                "type": "function",
                "function": {
                    "name": c.name,
                    "arguments": c.args if isinstance(c.args, str) else json.dumps(c.args),
                },
            }
            for i, c in enumerate(calls)
        ]

    def _completion(self, rec: RecordedRequest, reply: Text | Calls, prompt_tokens: int) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": None}
        if isinstance(reply, Text):
            message["content"] = reply.text
            finish = "stop"
            out_text = reply.text
        else:
            message["content"] = reply.text
            message["tool_calls"] = self._wire_calls(rec, reply.calls)
            finish = "tool_calls"
            out_text = json.dumps(message["tool_calls"])
        completion_tokens = _tokens(out_text)
        return {
            **self._base(rec, "chat.completion"),
            "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    async def _stream(
        self,
        request: web.Request,
        rec: RecordedRequest,
        turn: ChatTurn,
        reply: Text | Calls,
        prompt_tokens: int,
    ) -> web.StreamResponse:
        resp = web.StreamResponse(
            status=200, headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        rec.status = 200
        base = self._base(rec, "chat.completion.chunk")

        async def send(delta: dict[str, Any] | None, finish: str | None = None, usage: dict | None = None):
            chunk = {
                **base,
                "choices": [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            if usage is not None:
                chunk["usage"] = usage
            await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())

        out_text = ""
        try:
            await resp.prepare(request)
            if isinstance(reply, Text):
                parts = _split(reply.text, reply.pieces)
                for i, piece in enumerate(parts):
                    await _pause(request, reply.turn_s / len(parts))
                    await send({"role": "assistant", "content": piece} if i == 0 else {"content": piece})
                out_text = reply.text
                finish = "stop"
            else:
                await _pause(request, reply.turn_s)
                if reply.text:
                    await send({"role": "assistant", "content": reply.text})
                for i, call in enumerate(self._wire_calls(rec, reply.calls)):
                    args = call["function"]["arguments"]
                    head = {"index": i, "id": call["id"], "type": "function"}
                    await send(
                        {
                            "tool_calls": [
                                {**head, "function": {"name": call["function"]["name"], "arguments": ""}}
                            ]
                        }
                    )
                    for j in range(0, len(args), 16):
                        await send(
                            {"tool_calls": [{"index": i, "function": {"arguments": args[j : j + 16]}}]}
                        )
                out_text = json.dumps(self._wire_calls(rec, reply.calls))
                finish = "tool_calls"
            await send({}, finish)
            if (turn.body.get("stream_options") or {}).get("include_usage"):
                completion_tokens = _tokens(out_text)
                await send(
                    None,
                    usage={
                        "prompt_tokens": prompt_tokens,
                        "completion_tokens": completion_tokens,
                        "total_tokens": prompt_tokens + completion_tokens,
                    },
                )
            await resp.write(b"data: [DONE]\n\n")
            await resp.write_eof()
            rec.finished_at = time.monotonic()
        except ConnectionError:  # the client went away mid-answer
            rec.disconnected_at = time.monotonic()
        return resp


__all__ = [
    "Call",
    "Calls",
    "ChatTurn",
    "Fail",
    "Hang",
    "LoopbackLLM",
    "RecordedRequest",
    "Text",
    "failing",
    "hanging",
    "looping",
    "scripted",
    "tool_then_answer",
]

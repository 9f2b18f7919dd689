"""``mlm mcp``: the assistant's tools as an MCP server (Model Context Protocol), for Claude Desktop,
Cursor and any other MCP client.

There is one list of tools: ``agent.tools.TOOLS``. Each is exposed under its own name with the
JSON schema pydantic-ai builds for the chat model (``pydantic_ai.Tool(fn).tool_def``: the same
argument names, types, descriptions and defaults), its arguments are validated by that same
pydantic validator (so ``"5"`` is coerced to 5.0 here as in chat) and the call runs the same tool
function over the same ``Services`` container, so an MCP client gets the numbers ``mlm ask``,
REST and the app get. A tool's result is its typed answer, ``model_dump(mode="json")``, sent as
``structuredContent`` (schema: the answer model's, as ``outputSchema``) and as JSON text.

Bad arguments (a validation error, or the service's ``MLMError`` turned into ``ModelRetry`` by the
tool, e.g. an unknown venue with the valid ones listed) come back as a tool error
(``isError: true``) whose text is that message; an unknown tool name is a JSON-RPC
``INVALID_PARAMS`` error naming the tools. Nothing a client sends stops the server.

Transports (MCP SDK, ``mcp`` 2.x low-level ``Server``):

- stdio (default): the client launches ``mlm mcp --data <dir>`` and talks over stdin/stdout;
  stdout carries only protocol messages (logs and warnings go to stderr).
- streamable HTTP (``--http --port N``): endpoint ``http://<host>:<port>/mcp``. Every request
  needs ``Authorization: Bearer <MLM_API__TOKEN>`` (compared in constant time by
  ``api.security.token_problem``, the REST API's rule); without it the answer is HTTP 401. The
  server refuses to start over HTTP when no token is configured.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from market_liquidity_monitor import __version__

# The tools, pydantic-ai and the MCP SDK are imported on use: ``mlm --help`` stays fast.
if TYPE_CHECKING:
    from mcp.server import Server
    from pydantic_ai import RunContext
    from starlette.types import ASGIApp, Receive, Scope, Send

    from market_liquidity_monitor.agent.tools import AgentDeps
    from market_liquidity_monitor.config import Settings
    from market_liquidity_monitor.services import Services

log = logging.getLogger(__name__)

SERVER_NAME = "market-liquidity-monitor"
INSTRUCTIONS = (
    "Liquidity analytics over real crypto order books and candles: order-book summaries, market "
    "impact and slippage of a taker order, the largest size within a slippage limit, venue "
    "comparison, order routing, execution backtests, pairs statistics, price history, feed health "
    "and liquidity alerts. Every result names its venue, instrument, book time and data source; "
    "a tool error says which argument was wrong and what is valid."
)
HTTP_PATH = "/mcp"
WRITING_TOOLS = frozenset({"create_alert"})


class McpTools:
    """The MCP view of ``agent.tools.TOOLS`` over one ``Services`` container.

    ``definitions()`` -> ``list[mcp_types.Tool]`` (name, description, ``inputSchema`` = pydantic-ai's
    parameters schema, ``outputSchema`` = the typed answer's schema); ``call(name, arguments)`` ->
    ``mcp_types.CallToolResult``. Raises ``mcp.shared.exceptions.MCPError`` (INVALID_PARAMS) only for
    an unknown tool name; every other problem is a tool error result.
    """

    def __init__(self, services: Services, tools: Sequence[Callable[..., Any]] | None = None):
        from pydantic_ai import Tool

        from market_liquidity_monitor.agent.tools import TOOLS

        self.services = services
        tools = TOOLS if tools is None else tools
        self._tools = {t.name: t for t in (Tool(fn) for fn in tools)}
        self._started = False

    @property
    def names(self) -> list[str]:
        return list(self._tools)

    def definitions(self) -> list[Any]:
        import mcp_types

        out = []
        for tool in self._tools.values():
            d = tool.tool_def
            out.append(
                mcp_types.Tool(
                    name=d.name,
                    description=d.description,
                    input_schema=d.parameters_json_schema,
                    output_schema=d.return_schema or None,
                    # every tool reads, except create_alert, which adds a rule (nothing is deleted)
                    annotations=mcp_types.ToolAnnotations(
                        read_only_hint=d.name not in WRITING_TOOLS, destructive_hint=False
                    ),
                )
            )
        return out

    async def _start(self) -> None:
        """Load stored alert rules once (as the assistant does before a run). An unreachable
        database is not fatal: the alert service then loads its rules on first use."""
        if self._started:
            return
        self._started = True
        try:
            await self.services.start()
        except Exception as exc:  # storage down: the book tools still answer
            log.warning("alert rules not loaded yet (%s: %s); retried on first use", type(exc).__name__, exc)

    def _context(self, deps: AgentDeps, name: str) -> RunContext[AgentDeps]:
        """A run context for one call outside an agent run: the tools only read ``ctx.deps``;
        the model slot holds the offline model, which is never called here."""
        from pydantic_ai import RunContext
        from pydantic_ai.usage import RunUsage

        from market_liquidity_monitor.agent.offline import build_offline_model

        return RunContext(deps=deps, model=build_offline_model(), usage=RunUsage(), tool_name=name)

    async def call(self, name: str, arguments: dict[str, Any] | None) -> Any:
        import mcp_types
        from mcp.shared.exceptions import MCPError
        from mcp_types.jsonrpc import INVALID_PARAMS
        from pydantic import ValidationError
        from pydantic_ai import ModelRetry

        from market_liquidity_monitor.agent.retries import ArgumentProblems
        from market_liquidity_monitor.agent.tools import AgentDeps
        from market_liquidity_monitor.domain.errors import MLMError

        tool = self._tools.get(name)
        if tool is None:
            raise MCPError(INVALID_PARAMS, f"unknown tool {name!r}; valid tools: {', '.join(self._tools)}")
        schema = tool.function_schema
        try:
            args = schema.validator.validate_python(arguments or {})
        except ValidationError as exc:  # every bad field at once, pydantic's text (lists Literal values)
            problems = ArgumentProblems(name)
            problems.add_validation_error(exc)
            return _error(problems.message())
        await self._start()
        deps = AgentDeps(self.services)
        try:
            await schema.call(args, self._context(deps, name))  # the model's view; the answer is logged
        except ModelRetry as exc:  # the tool's refusal: the service's message, naming what is valid
            return _error(exc.message)
        except MLMError as exc:  # raised outside a tool's own handling
            return _error(str(exc))
        except Exception as exc:  # a bug must not end the session: log it, tell the client
            log.exception("MCP tool %s failed", name)
            return _error(f"{name} failed: {type(exc).__name__}: {exc}")
        data = deps.tool_log[-1].result.model_dump(mode="json")  # the typed answer, in full
        return mcp_types.CallToolResult(
            content=[mcp_types.TextContent(type="text", text=json.dumps(data, ensure_ascii=False))],
            structured_content=data,
        )


def _error(message: str) -> Any:
    import mcp_types

    return mcp_types.CallToolResult(content=[mcp_types.TextContent(type="text", text=message)], is_error=True)


def build_server(services: Services) -> Server[Any]:
    """The MCP low-level ``Server`` over ``services`` (its tools: ``McpTools``)."""
    import mcp_types
    from mcp.server import Server

    tools = McpTools(services)

    async def list_tools(ctx: Any, params: Any) -> mcp_types.ListToolsResult:
        return mcp_types.ListToolsResult(tools=tools.definitions())

    async def call_tool(ctx: Any, params: mcp_types.CallToolRequestParams) -> mcp_types.CallToolResult:
        return await tools.call(params.name, params.arguments)

    schemas = {d.name: d.input_schema for d in tools.definitions()}
    return Server(
        SERVER_NAME,
        version=__version__,
        instructions=INSTRUCTIONS,
        get_tool_input_schema=schemas.get,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


class BearerTokenGate:
    """ASGI wrapper: HTTP 401 (JSON ``detail``, ``WWW-Authenticate: Bearer``) unless the request
    carries ``Authorization: Bearer <settings.api.token>`` (``api.security.token_problem``)."""

    def __init__(self, app: ASGIApp, settings: Settings):
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            from starlette.requests import HTTPConnection
            from starlette.responses import JSONResponse

            from market_liquidity_monitor.api.security import token_problem

            problem = token_problem(HTTPConnection(scope), self.settings)
            if problem is not None:
                response = JSONResponse(
                    {"detail": problem}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def http_app(services: Services, host: str) -> ASGIApp:
    """The streamable-HTTP ASGI app (endpoint ``/mcp``) behind the token gate."""
    server = build_server(services)
    app = server.streamable_http_app(streamable_http_path=HTTP_PATH, host=host)
    return BearerTokenGate(app, services.settings)


async def serve_stdio(services: Services) -> None:
    """Serve one client over stdin/stdout until it closes the connection."""
    from mcp.server.stdio import stdio_server

    server = build_server(services)
    try:
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())
    finally:
        await services.close()


async def serve_http(services: Services, host: str, port: int) -> None:
    """Serve streamable HTTP on ``host:port`` until interrupted."""
    import uvicorn

    config = uvicorn.Config(http_app(services, host), host=host, port=port, log_config=None, access_log=False)
    try:
        await uvicorn.Server(config).serve()
    finally:
        await services.close()


def mcp_command(
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Run on recorded data in this directory (../shared/data layout)."),
    ] = None,
    http: Annotated[
        bool, typer.Option("--http", help="Serve streamable HTTP (needs MLM_API__TOKEN) instead of stdio.")
    ] = False,
    host: Annotated[str, typer.Option(help="Bind address of --http.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of --http (endpoint /mcp).")] = 8765,
) -> None:
    """Serve the assistant's tools to MCP clients (Claude Desktop, Cursor...): stdio, or --http."""
    import anyio
    from rich.console import Console

    from market_liquidity_monitor.cli import _services, _settings
    from market_liquidity_monitor.observability import configure_logging

    err = Console(stderr=True)  # stdout is the stdio transport: nothing else may be written there
    settings = _settings(data)
    if http:
        if settings.api.token is None:
            err.print(
                "error: --http needs an API token: set MLM_API__TOKEN (clients send it as "
                "'Authorization: Bearer <token>')",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(2)
        from market_liquidity_monitor.runtime import port_error, port_in_use

        reason = port_in_use(host, port)
        if reason is not None:
            err.print(port_error("MCP", "--port", host, port, reason), markup=False, highlight=False)
            raise typer.Exit(1)
    configure_logging(settings)  # to stderr
    services = _services(settings, err)
    if http:
        err.print(f"MCP server on http://{host}:{port}{HTTP_PATH}", markup=False, highlight=False)
        anyio.run(serve_http, services, host, port)
    else:
        anyio.run(serve_stdio, services)


def register(app: typer.Typer) -> None:
    """Add ``mlm mcp`` to the CLI."""
    app.command("mcp")(mcp_command)

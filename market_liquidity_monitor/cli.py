"""The ``mlm`` command."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from market_liquidity_monitor.data_engine.cli import register as register_rest_replay_command
from market_liquidity_monitor.ingest.cli import register as register_ingest_commands
from market_liquidity_monitor.mcp_server import register as register_mcp_command
from market_liquidity_monitor.runtime import register as register_up_command
from market_liquidity_monitor.watch import register as register_watch_command

if TYPE_CHECKING:  # pydantic-settings loads with the first command that needs settings, not --help
    from market_liquidity_monitor.config import Settings


def _flags_take_no_value_in_help() -> None:
    """Typer 0.29's rich help prints a ``<bool>`` type after every flag (``--help <bool>``,
    ``--no-ui <bool>``), as if it took a value; its plain help does not (``TyperOption.
    get_help_record`` skips the type when ``is_flag``). Apply that same rule to the rich help.
    No option declaration causes it: even typer's own ``--help`` shows it."""
    from typer.core import TyperOption

    if getattr(TyperOption.display_type_rich, "_mlm_flags_fix", False):
        return
    original = TyperOption.display_type_rich

    def display_type_rich(self, ctx):
        if self.is_flag and not self.count:
            return None
        return original(self, ctx)

    display_type_rich._mlm_flags_fix = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich


_flags_take_no_value_in_help()

# Set by a command once its work is done and its output written (``mlm ask``): ``main`` then ends
# the process without the interpreter's teardown (``runtime.fast_exit``: logs and streams flushed
# first), which frees every restored or replayed book level one by one (~0.6 s of CPU).
_skip_teardown = False
# True when this process was started as ``mlm`` (``main``): a command may then shape the whole
# process (``mlm ask`` keeps Logfire unimported), which it must not do when embedded (CliRunner).
_process_entry = False

app = typer.Typer(
    help="Market Liquidity Monitor: liquidity analytics and an assistant over real order books.",
    no_args_is_help=True,
    add_completion=False,
)


def _mount_storage() -> None:
    from market_liquidity_monitor.storage.cli import db_app

    app.add_typer(db_app, name="db", help="Database schema (Alembic migrations): upgrade, current.")


_mount_storage()
register_ingest_commands(app)  # `mlm record`, `mlm replay`
register_up_command(app)  # `mlm up`
register_watch_command(app)  # `mlm watch`
register_rest_replay_command(app)  # `mlm rest-replay`
register_mcp_command(app)  # `mlm mcp`


def _register_bus() -> None:
    from market_liquidity_monitor.bus.cli import register

    register(app)  # `mlm ingest --shard I/N --bus redis://...`


_register_bus()

DataOpt = Annotated[
    Path | None,
    typer.Option("--data", help="Run on recorded data in this directory (../shared/data layout)."),
]


def _settings(data: Path | None) -> Settings:
    from market_liquidity_monitor.config import Settings

    overrides = {}
    if data is not None:
        if not data.is_dir():
            raise typer.BadParameter(f"{data} is not a directory", param_hint="--data")
        overrides["data_dir"] = data
    return Settings(**overrides)


def _services(
    settings: Settings, console: Console, *, persist_alerts: bool = True, defer_storage: bool = False
):
    """The service container of a one-shot command: recorded data with ``--data``, else live venues
    (books and candles through ccxt REST; WebSocket books only under ``mlm up``). ``defer_storage``:
    the database opens on first use (``Services.start``)."""
    from market_liquidity_monitor.services import Services

    if settings.data_dir is None and not settings.data_engine.rest_base_url:
        console.print(
            "[yellow]No --data given and MLM_DATA_DIR is unset: answering from live venues over ccxt REST "
            "(network needed). Run on recorded data with --data ../shared/data.[/yellow]"
        )
    return Services.build(settings, persist_alerts=persist_alerts, defer_storage=defer_storage)


def _provider_failed(console: Console, exc: Exception) -> NoReturn:
    """One line on stderr (no traceback, no key) and exit code 2."""
    console.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(2) from None


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="A liquidity question in plain language.")],
    data: DataOpt = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object: answer, tool calls and grounding check.")
    ] = False,
) -> None:
    """Answer one question from real order books."""
    from market_liquidity_monitor.lazy import leave_out_logfire_pydantic_plugin
    from market_liquidity_monitor.runtime import startup_heap

    # A one-shot process imports only what it uses: Logfire only when there are spans to make.
    # Both switches last for the process, so only when it is ours (``main``), never embedded.
    if _process_entry:
        leave_out_logfire_pydantic_plugin()
    with startup_heap():  # imports and long-lived objects: not walked by every later collection
        console = Console(stderr=True)
        settings = _settings(data)
        if _process_entry:
            from market_liquidity_monitor.observability import skip_logfire_import

            skip_logfire_import(settings)
        from market_liquidity_monitor.agent.assistant import Assistant, ModelProviderError

        # Alert rules created here are stored in the history database, so a later `mlm ask` (or
        # the API) sees them.
        services = _services(settings, console, defer_storage=True)
        assistant = Assistant(settings, services)

    async def run():
        try:
            return await assistant.ask(question)
        finally:
            await services.close()

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,} msgs"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        tasks: dict[str, int] = {}

        def on_progress(name: str, n: int) -> None:
            if name not in tasks:
                tasks[name] = progress.add_task(f"replaying {name}", total=None)
            progress.update(tasks[name], completed=n)

        services.market.progress = on_progress
        try:
            result = asyncio.run(run())
        except ModelProviderError as exc:
            progress.stop()
            _provider_failed(console, exc)
    if as_json:
        sys.stdout.write(
            json.dumps(
                {"answer": result.answer, "tool_calls": result.tool_calls, "grounding": result.grounding},
                default=str,
            )
            + "\n"
        )
    else:
        # emoji=False: "LINK/USD:LINK" must not become "LINK/USD🔗".
        Console().print(result.answer, markup=False, highlight=False, emoji=False)
    global _skip_teardown
    _skip_teardown = True  # services closed, answer written: nothing is left for the teardown


@app.command("eval")
def eval_(
    file: Annotated[Path, typer.Argument(help="A query file (JSON lines: query, capability, args).")],
    data: DataOpt = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object with per-question verdicts.")
    ] = False,
) -> None:
    """Measure routing accuracy (right tool, right arguments) and grounding on a query file."""
    from market_liquidity_monitor.agent.assistant import Assistant, ModelProviderError
    from market_liquidity_monitor.agent.evaluation import run_eval

    console = Console(stderr=True)
    settings = _settings(data)
    services = _services(settings, console, persist_alerts=False)
    try:
        report = run_eval(Assistant(settings, services), file)
    except ModelProviderError as exc:
        _provider_failed(console, exc)
    except (OSError, ValueError) as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    if as_json:
        sys.stdout.write(json.dumps(report.as_dict(), default=str) + "\n")
        return
    out = Console()
    for item in report.items:
        mark = "ok " if item.verdict == "ok" else "BAD"
        out.print(f"{mark} {item.question}" + (f"  [{item.detail}]" if item.detail else ""), markup=False)
    out.print(f"routing accuracy: {report.routing_accuracy:.1%} ({len(report.items)} questions)")
    out.print(f"grounding rate:   {report.grounding_rate:.1%}")


@app.command("import")
def import_(
    path: Annotated[
        Path, typer.Argument(help="A file or directory of candle files / recordings (e.g. ../shared/data).")
    ],
    venue: Annotated[
        str | None, typer.Option(help="Venue of the candles when the path does not say (default binance).")
    ] = None,
    candles_only: Annotated[bool, typer.Option("--candles-only", help="Skip recorded trades.")] = False,
) -> None:
    """Load candle files (freqtrade JSON, Feather/Parquet, CSV) and recorded trades into storage, idempotently."""
    from market_liquidity_monitor.storage.cli import import_path

    if not path.exists():
        raise typer.BadParameter(f"{path} does not exist", param_hint="PATH")
    from market_liquidity_monitor.config import Settings

    import_path(Settings(), path, progress=True, venue=venue, include_recordings=not candles_only)


@app.command("export")
def export_(
    kind: Annotated[str, typer.Argument(help="candles, trades or metrics")],
    out: Annotated[Path, typer.Argument(help="Output file (.csv or .parquet)")],
    venue: Annotated[str | None, typer.Option(help="ccxt venue id filter")] = None,
    symbol: Annotated[str | None, typer.Option(help="Unified symbol filter, e.g. BTC/USDT")] = None,
    timeframe: Annotated[str | None, typer.Option(help="Candle timeframe filter, e.g. 5m")] = None,
) -> None:
    """Export stored candles, trades or metrics to CSV or Parquet."""
    from market_liquidity_monitor.storage.cli import export

    if kind not in ("candles", "trades", "metrics"):
        raise typer.BadParameter(f"{kind!r}: valid kinds are candles, trades, metrics", param_hint="KIND")
    from market_liquidity_monitor.config import Settings

    res = export(Settings(), kind, out, venue=venue, symbol=symbol, timeframe=timeframe)
    Console(stderr=True).print(
        f"wrote {res.rows:,} row{'' if res.rows == 1 else 's'} of {res.kind} as {res.fmt} to {res.path}",
        markup=False,
        highlight=False,
    )


@app.command()
def serve(
    data: DataOpt = None,
    host: Annotated[str | None, typer.Option(help="Bind address (default from settings: 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", help="Log every HTTP request (the uvicorn access log).")
    ] = False,
    bus: Annotated[
        str | None,
        typer.Option(
            "--bus",
            help="Run as an API replica: books rebuilt from the ingest workers' bus (redis://host:port/db); "
            "no ingest in this process.",
        ),
    ] = None,
) -> None:
    """Start the REST API (OpenAPI docs at /docs)."""
    import uvicorn

    from market_liquidity_monitor.api.app import create_app
    from market_liquidity_monitor.observability import configure_logging
    from market_liquidity_monitor.runtime import port_error, port_in_use

    settings = _settings(data)
    bind_host, bind_port = host or settings.api.host, port or settings.api.port
    reason = port_in_use(bind_host, bind_port)
    if reason is not None:  # before the app (and its recordings) load
        Console(stderr=True).print(
            port_error("API", "--port", bind_host, bind_port, reason),
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1)
    configure_logging(settings)
    market = follower = None
    if bus is not None:
        if data is not None:
            raise typer.BadParameter(
                "a replica (--bus) serves the workers' books; drop --data", param_hint="--bus"
            )
        from market_liquidity_monitor.bus.cli import replica_market

        try:
            market, follower = replica_market(settings, bus)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--bus") from None
    uvicorn.run(
        create_app(settings, market=market),
        host=bind_host,
        port=bind_port,
        access_log=verbose,
        # uvicorn's own handlers would print the WebSocket ?token= in clear: its records go to the
        # root handler of configure_logging instead, through the redaction filter (as in `mlm up`).
        log_config=None,
    )
    if follower is not None:
        follower.stop()


def main() -> None:
    """The ``mlm`` entry point. After a command that set ``_skip_teardown`` the process exits
    with its exit code through ``runtime.fast_exit`` (flushes, then ``os._exit``). The console
    script ``mlm`` (pyproject ``[project.scripts]``) and ``python -m market_liquidity_monitor.cli``
    both come here."""
    global _process_entry
    _process_entry = True
    try:
        app()
    except SystemExit as exc:
        if _skip_teardown:
            from market_liquidity_monitor.runtime import fast_exit

            fast_exit(exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1)
        raise


if __name__ == "__main__":  # pragma: no cover
    main()

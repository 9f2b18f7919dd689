"""``mlm rest-replay DIR [--host 127.0.0.1] [--port 8900]``: serve recorded venue REST responses.

Starts the offline REST stand-in (``data_engine.replay_server.RestReplayServer``) over a
``../shared/data``-layout directory, prints its base URL, the environment line that points the
product's ccxt data engine at it (``MLM_DATA_ENGINE__REST_BASE_URL=...``) and the per-venue
coverage, then serves until Ctrl-C (SIGINT) or SIGTERM, and stops cleanly. It binds to the loopback
interface unless ``--host`` says otherwise. Heavy imports happen inside the command, so ``mlm --help``
stays fast.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated

import typer


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def rest_replay_command(
    data_dir: Annotated[
        Path, typer.Argument(help="Recorded data directory in the ../shared/data layout.", show_default=False)
    ],
    host: Annotated[
        str, typer.Option("--host", help="Interface to bind (loopback by default; anything else is exposed).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port (0 = any free port).")] = 8900,
) -> None:
    """Serve recorded venue REST responses (Binance, Bitstamp, Gate, KuCoin, ...) for the ccxt client."""
    import asyncio
    import contextlib
    import signal

    from rich.console import Console
    from rich.table import Table

    from market_liquidity_monitor.data_engine.replay_server import RestReplayServer, coverage

    if not 0 <= port <= 65535:
        raise typer.BadParameter(
            f"{port} is not a TCP port: use 0-65535 (0 = any free port)", param_hint="--port"
        )
    try:
        server = RestReplayServer.from_data_dir(data_dir, host=host, port=port)
    except FileNotFoundError as exc:
        raise typer.BadParameter(str(exc), param_hint="DATA_DIR") from None
    out = Console(highlight=False, soft_wrap=True)
    err = Console(stderr=True, highlight=False)
    if not _is_loopback(host):
        err.print(
            f"[yellow]warning: binding {host}, not loopback: the stand-in is reachable from other machines[/yellow]"
        )

    async def main() -> None:
        try:
            base_url = await server.start()
        except OSError as exc:
            err.print(f"error: cannot listen on {host}:{port}: {exc.strerror or exc}", markup=False)
            raise typer.Exit(2) from None
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread, Windows
                loop.add_signal_handler(sig, stop.set)
        out.print(f"rest-replay serving {data_dir} at {base_url}", markup=False)
        out.print(f"MLM_DATA_ENGINE__REST_BASE_URL={base_url}", markup=False)
        table = Table(title="coverage (anything else: the venue's own not-found error)", show_lines=False)
        for col in ("venue", "host", "endpoint", "served from"):
            table.add_column(col, overflow="fold")
        for row in coverage(server.recordings):
            table.add_row(row.venue, row.host, row.endpoint, row.serves)
        out.print(table)
        out.print("Ctrl-C stops.", markup=False)
        try:
            await stop.wait()
        finally:
            await server.stop()
        out.print(f"rest-replay stopped after {len(server.requests)} requests", markup=False)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


def register(app: typer.Typer) -> None:
    """Add ``mlm rest-replay`` to the CLI."""
    app.command("rest-replay")(rest_replay_command)


__all__ = ["register", "rest_replay_command"]

"""``mlm watch SYMBOL``: a live terminal table of one instrument's liquidity on every venue.

Per venue: mid (quote currency), spread (bps), resting size within ``--window-bps`` of mid on
each side (base currency; the headers name both currencies), imbalance in that window, the slippage (bps vs mid) of a market buy and sell of the
reference size (``--size`` base units, or ``--notional`` quote units, default 100,000), the book's
timestamp and age, and its quality (synced, crossed, stale, gaps, resyncs, checksum failures).
Refreshed ``settings.analytics.tick_hz`` times a second; ``--once`` prints one table and exits
(``--json``: the rows as one JSON object).

The figures are ``market_liquidity_monitor.analytics`` on the ``BookStore`` views (``book_summary``
for top of book, depth and imbalance, as ``GET /api/orderbook``; ``market_impact``): on live
venues, on recorded data (``--data DIR``, optionally played at ``--speed N``), or asked of a
running API (``--api URL``: ``GET /api/orderbook`` and ``POST /api/impact``).
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from market_liquidity_monitor.domain.errors import MLMError

if TYPE_CHECKING:
    from market_liquidity_monitor.market_data import MarketData
    from market_liquidity_monitor.services import Services

DEFAULT_NOTIONAL = 100_000.0


@dataclass(frozen=True, slots=True)
class WatchRow:
    """One venue's figures (None where the book cannot give them; ``error`` says why)."""

    venue: str
    symbol: str | None = None
    mid_price: float | None = None
    spread_bps: float | None = None
    window_bps: float | None = None
    bid_depth: float | None = None  # base units within window_bps of mid
    ask_depth: float | None = None
    bid_depth_notional: float | None = None  # quote units
    ask_depth_notional: float | None = None
    imbalance: float | None = None  # (bid - ask) / (bid + ask) within the window, [-1, 1]
    buy_slippage_bps: float | None = None  # vs mid, positive = cost
    sell_slippage_bps: float | None = None
    buy_filled: bool | None = None  # False: the visible side could not fill the reference size
    sell_filled: bool | None = None
    book_ts: str | None = None  # ISO 8601 UTC
    age_ms: float | None = None
    quality: str = ""
    error: str | None = None


def quality_label(q: dict[str, Any]) -> str:
    """``ok``, or the book's problems: ``not synced``, ``crossed``, ``stale``, ``gaps=N``,
    ``resyncs=N``, ``checksum failures=N`` (comma-separated)."""
    from market_liquidity_monitor.analytics import book_problems  # lazy: keeps `mlm --help` fast

    issues = [str(p) for p in book_problems(q)]
    for key, label in (("gaps", "gaps"), ("resyncs", "resyncs"), ("checksum_failures", "checksum failures")):
        if q.get(key):
            issues.append(f"{label}={q[key]}")
    return ", ".join(issues) or "ok"


def _amount(size: float | None, notional: float | None) -> dict[str, float]:
    if size is not None:
        return {"size": size}
    return {"notional": notional if notional is not None else DEFAULT_NOTIONAL}


async def compute_row(
    services: Services, venue: str, symbol: str, window_bps: float, size: float | None, notional: float | None
) -> WatchRow:
    """Figures of ``symbol`` on ``venue`` from the service layer: ``LiquidityService.order_book``
    (top of book, depth and imbalance within ``window_bps``, as ``GET /api/orderbook``) and
    ``LiquidityService.impact`` for a buy and a sell of the reference size."""
    liq = services.liquidity
    try:
        ob = await liq.order_book(symbol, venue, window_bps)
        top = ob.top_of_book
        depth = next(d for d in ob.depth if d.window_bps == window_bps)
        imb = next(i for i in ob.imbalance if i.window_bps == window_bps)
        buy = await liq.impact(ob.symbol, "buy", venue=venue, **_amount(size, notional))
        sell = await liq.impact(ob.symbol, "sell", venue=venue, **_amount(size, notional))
    except MLMError as exc:
        return WatchRow(venue=venue, error=str(exc))
    q = dict(ob.book.quality)
    return WatchRow(
        venue=venue,
        symbol=ob.symbol,
        mid_price=top.mid_price,
        spread_bps=top.spread_bps,
        window_bps=depth.window_bps,
        bid_depth=depth.bid_size,
        ask_depth=depth.ask_size,
        bid_depth_notional=depth.bid_notional,
        ask_depth_notional=depth.ask_notional,
        imbalance=imb.imbalance,
        buy_slippage_bps=buy.slippage_bps,
        sell_slippage_bps=sell.slippage_bps,
        buy_filled=buy.fully_filled,
        sell_filled=sell.fully_filled,
        book_ts=top.book_ts,
        age_ms=q.get("age_ms"),
        quality=quality_label(q),
    )


async def service_rows(
    services: Services,
    symbol: str,
    venues: Iterable[str] | None,
    window_bps: float,
    size: float | None,
    notional: float | None,
) -> list[WatchRow]:
    """One row per venue listing ``symbol`` (every venue with a book unless ``venues`` is given)."""
    rows = []
    for venue in venues or services.books.venues():
        try:
            await services.books.resolve(symbol, venue)
        except MLMError as exc:
            if venues:  # asked for explicitly: say why there is nothing
                rows.append(WatchRow(venue=venue, error=str(exc)))
            continue
        rows.append(await compute_row(services, venue, symbol, window_bps, size, notional))
    return rows


def market_rows(
    market: MarketData,
    symbol: str,
    venues: Iterable[str] | None,
    window_bps: float,
    size: float | None,
    notional: float | None,
) -> list[WatchRow]:
    """``service_rows`` over ``market``'s books, run to completion (for callers without a loop)."""
    import asyncio

    from market_liquidity_monitor.services import Services

    services = Services.build(market.settings, market=market, persist_alerts=False)

    async def run() -> list[WatchRow]:
        try:
            return await service_rows(services, symbol, venues, window_bps, size, notional)
        finally:
            await services.close()

    return asyncio.run(run())


def api_rows(
    client,
    symbol: str,
    venues: Iterable[str],
    window_bps: float,
    size: float | None,
    notional: float | None,
) -> list[WatchRow]:
    """The same rows from a running API (``client``: an ``httpx.Client`` with its base URL)."""
    rows = []
    for venue in venues:
        try:
            r = client.get(f"/api/orderbook/{venue}/{symbol}", params={"levels": 1, "window_bps": window_bps})
            if r.status_code != 200:
                rows.append(WatchRow(venue=venue, error=f"HTTP {r.status_code}: {_detail(r)}"))
                continue
            ob = r.json()
            slips = {}
            for side in ("buy", "sell"):
                body = {"venue": venue, "symbol": ob["symbol"], "side": side, **_amount(size, notional)}
                ri = client.post("/api/impact", json=body)
                slips[side] = ri.json() if ri.status_code == 200 else None
        except Exception as exc:  # network errors: show them in the row, keep watching
            rows.append(WatchRow(venue=venue, error=f"{type(exc).__name__}: {exc}"))
            continue
        depth = next((d for d in ob["depth"] if math.isclose(d["window_bps"], window_bps)), None)
        imb = next((i for i in ob["imbalance"] if math.isclose(i["window_bps"], window_bps)), None)
        top = ob["top_of_book"]
        q = ob.get("quality") or {}
        rows.append(
            WatchRow(
                venue=venue,
                symbol=ob["symbol"],
                mid_price=top["mid_price"],
                spread_bps=top["spread_bps"],
                window_bps=window_bps,
                bid_depth=depth and depth["bid_size"],
                ask_depth=depth and depth["ask_size"],
                bid_depth_notional=depth and depth["bid_notional"],
                ask_depth_notional=depth and depth["ask_notional"],
                imbalance=imb and imb["imbalance"],
                buy_slippage_bps=slips["buy"] and slips["buy"]["slippage_bps"],
                sell_slippage_bps=slips["sell"] and slips["sell"]["slippage_bps"],
                buy_filled=slips["buy"] and slips["buy"]["fully_filled"],
                sell_filled=slips["sell"] and slips["sell"]["fully_filled"],
                book_ts=ob.get("book_ts"),
                age_ms=q.get("age_ms"),
                quality=quality_label(q),
            )
        )
    return rows


def _detail(r) -> str:
    try:
        return str(r.json().get("detail", r.text))[:200]
    except ValueError:
        return r.text[:200]


# ---------------------------------------------------------------------------------- display


def fmt_price(x: float | None) -> str:
    """A price with enough decimals for its size (2 above 1000, up to 8 below 1)."""
    if x is None:
        return "-"
    digits = math.floor(math.log10(abs(x))) + 1 if x else 1
    return f"{x:,.{min(8, max(2, 6 - digits))}f}"


def fmt_num(x: float | None, decimals: int) -> str:
    return "-" if x is None else f"{x:,.{decimals}f}"


def fmt_age(ms: float | None) -> str:
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 120_000:
        return f"{ms / 1000:.1f} s"
    return f"{ms / 60_000:.1f} min"


def _currencies(symbols: list[str], asked: str) -> tuple[str, str]:
    """``(base, quote)`` shared by the unified symbols (``BTC/USDT`` and ``BTC/USDT:USDT`` ->
    BTC, USDT; ``BTC/USD:BTC`` -> BTC, USD); ``base``/``quote`` where they differ, the asked
    symbol's base when no row has one. Source of the form: ccxt's unified symbol convention."""
    bases = {sym.split("/")[0] for sym in symbols}
    quotes = {sym.split("/")[1].split(":")[0] for sym in symbols if "/" in sym}
    asked_base = asked.strip().upper().split("/")[0] or "base"
    base = bases.pop() if len(bases) == 1 else ("base" if bases else asked_base)
    quote = quotes.pop() if len(quotes) == 1 else "quote"
    return base, quote


def render(
    rows: list[WatchRow], symbol: str, window_bps: float, size: float | None, notional: float | None
) -> Table:
    """The rich table of ``rows``. Headers name the units: prices in the quote currency, depth in
    the base currency (from the rows' unified symbols; ``base``/``quote`` when venues differ)."""
    base, quote = _currencies([r.symbol for r in rows if r.error is None and r.symbol], symbol)
    ref = f"{size:g} {base}" if size is not None else f"{notional or DEFAULT_NOTIONAL:,.0f} {quote}"
    table = Table(
        title=f"{symbol}: liquidity by venue (window ±{window_bps:g} bps, reference order {ref})",
        title_justify="left",
    )
    for name, justify in (
        ("venue", "left"),
        ("symbol", "left"),
        (f"mid ({quote})", "right"),
        ("spread bps", "right"),
        (f"bid depth ±{window_bps:g} bps ({base})", "right"),
        (f"ask depth ±{window_bps:g} bps ({base})", "right"),
        ("imbalance", "right"),
        ("buy slip bps", "right"),
        ("sell slip bps", "right"),
        ("book time (UTC)", "left"),
        ("age", "right"),
        ("quality", "left"),
    ):
        table.add_column(name, justify=justify, no_wrap=name not in ("quality",))
    for r in rows:
        if r.error is not None:
            # The first sentence(s) only: the full list of valid symbols is for --json.
            reason = escape(r.error.split(" Available:")[0])
            table.add_row(r.venue, r.symbol or "-", *["-"] * 9, f"[red]{reason}[/red]")
            continue
        buy = fmt_num(r.buy_slippage_bps, 2) + ("" if r.buy_filled in (True, None) else "*")
        sell = fmt_num(r.sell_slippage_bps, 2) + ("" if r.sell_filled in (True, None) else "*")
        style = "green" if r.quality == "ok" else "yellow"
        table.add_row(
            r.venue,
            r.symbol,
            fmt_price(r.mid_price),
            fmt_num(r.spread_bps, 3),
            fmt_num(r.bid_depth, 4),
            fmt_num(r.ask_depth, 4),
            fmt_num(r.imbalance, 3),
            buy,
            sell,
            (r.book_ts or "-").replace("T", " ").removesuffix("Z"),
            fmt_age(r.age_ms),
            f"[{style}]{r.quality}[/{style}]",
        )
    notes = []
    if quote == "quote":
        notes.append("quote = each row's quote currency (after the / of its symbol)")
    if any(r.buy_filled is False or r.sell_filled is False for r in rows):
        notes.append("* the visible book could not fill the whole reference order")
    if notes:
        table.caption = "; ".join(notes)
    return table


# ---------------------------------------------------------------------------------- command


def watch_command(
    symbol: Annotated[str, typer.Argument(help="Unified symbol or base asset: BTC/USDT, ETH, BTC/USD...")],
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Run on recorded data in this directory (../shared/data layout)."),
    ] = None,
    window_bps: Annotated[
        float, typer.Option("--window-bps", help="Depth/imbalance window around mid (bps).")
    ] = 50.0,
    size: Annotated[
        float | None, typer.Option("--size", help="Reference order size for slippage, base units.")
    ] = None,
    notional: Annotated[
        float | None,
        typer.Option("--notional", help="Reference order in quote units (default 100,000 when no --size)."),
    ] = None,
    venue: Annotated[
        list[str] | None, typer.Option("--venue", help="Only these venues (repeatable); default all.")
    ] = None,
    api: Annotated[
        str | None, typer.Option("--api", help="Ask a running API (http://127.0.0.1:8000) instead.")
    ] = None,
    speed: Annotated[
        float,
        typer.Option("--speed", help="With --data: 0 = books at the end of the recording; N = play N x."),
    ] = 0.0,
    once: Annotated[bool, typer.Option("--once", help="Print one table and exit.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="With --once: print the rows as JSON.")] = False,
) -> None:
    """A live terminal table of SYMBOL's liquidity on every venue (refreshed at the metrics rate)."""
    from market_liquidity_monitor.observability import configure_logging

    if data is not None and not data.is_dir():
        raise typer.BadParameter(f"{data} is not a directory", param_hint="--data")
    if not (0 < window_bps <= 10_000):
        raise typer.BadParameter(f"{window_bps}: must be in (0, 10000] bps", param_hint="--window-bps")
    if size is not None and notional is not None:
        raise typer.BadParameter("give --size or --notional, not both", param_hint="--size")
    for name, v in (("--size", size), ("--notional", notional)):
        if v is not None and not (math.isfinite(v) and v > 0):
            raise typer.BadParameter(f"{v}: must be a number > 0", param_hint=name)
    if not speed >= 0:
        raise typer.BadParameter(f"{speed}: must be >= 0", param_hint="--speed")
    from market_liquidity_monitor.config import Settings

    settings = Settings(**({"data_dir": data} if data is not None else {}))
    configure_logging(settings)
    err = Console(stderr=True)

    rows_fn, close = _source(settings, symbol, venue, window_bps, size, notional, api, speed, once, err)
    try:
        if once:
            rows = rows_fn()
            if as_json:
                sys.stdout.write(json.dumps({"symbol": symbol, "rows": [asdict(r) for r in rows]}) + "\n")
            else:
                Console(width=max(Console().width, 200)).print(
                    render(rows, symbol, window_bps, size, notional)
                )
            if not rows:
                err.print(f"[yellow]no venue has a book for {symbol}[/yellow]")
                raise typer.Exit(1)
            return
        _live(rows_fn, symbol, window_bps, size, notional, settings.analytics.tick_hz)
    finally:
        close()


def _source(settings, symbol, venues, window_bps, size, notional, api, speed, once, err):
    """``(rows_fn, close)`` for the API, recorded data or live venues."""
    if api is not None:
        import httpx

        headers = {}
        if settings.api.token is not None:
            headers["Authorization"] = f"Bearer {settings.api.token.get_secret_value()}"
        client = httpx.Client(base_url=api, headers=headers, timeout=10.0)
        vs = list(venues or settings.venues)
        return (lambda: api_rows(client, symbol, vs, window_bps, size, notional)), client.close

    import asyncio

    from market_liquidity_monitor.market_data import MarketData
    from market_liquidity_monitor.services import Services

    runner = asyncio.Runner()

    def rows_of(market: MarketData):
        services = Services.build(settings, market=market, persist_alerts=False)

        def rows() -> list[WatchRow]:
            return runner.run(service_rows(services, symbol, venues, window_bps, size, notional))

        def close_services() -> None:
            runner.run(services.close())
            runner.close()

        return rows, close_services

    if settings.data_dir is not None:
        market = MarketData.from_recordings(settings, settings.data_dir)
        rows, close_services = rows_of(market)
        if speed > 0 and not once:
            from market_liquidity_monitor.runtime import RecordedIngest

            ingest = RecordedIngest(market, speed=speed)
            ingest.start()

            def stop() -> None:
                ingest.stop()
                close_services()

            return rows, stop
        return rows, close_services

    # Live venues: the live runtime in a background thread with its own event loop.
    import threading

    from market_liquidity_monitor.runtime import live_feed_handler

    market = MarketData(settings)
    s = settings.model_copy(
        update={
            "api": settings.api.model_copy(update={"watch_symbols": (symbol,)}),
            **({"venues": tuple(venues)} if venues else {}),
        }
    )
    feed, _ = live_feed_handler(s, market)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(
        target=loop.run_until_complete, args=(feed.run(),), name="mlm-watch-feed", daemon=True
    )
    thread.start()
    err.print(f"connecting to {len(feed.connections)} venue feed(s)...")
    if once:  # give the books a moment to get their first snapshot
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not all(c.synced() for c in feed.connections):
            time.sleep(0.2)
    rows, close_services = rows_of(market)

    def close() -> None:
        loop.call_soon_threadsafe(feed.stop)
        thread.join(10)
        close_services()

    return rows, close


def _live(rows_fn: Callable[[], list[WatchRow]], symbol, window_bps, size, notional, tick_hz: float) -> None:
    from rich.live import Live

    period = 1.0 / tick_hz if tick_hz > 0 else 1.0
    try:
        with Live(
            render(rows_fn(), symbol, window_bps, size, notional), refresh_per_second=max(tick_hz, 1)
        ) as live:
            while True:
                time.sleep(period)
                live.update(render(rows_fn(), symbol, window_bps, size, notional))
    except KeyboardInterrupt:
        pass


def register(app: typer.Typer) -> None:
    """Add ``mlm watch`` to the CLI."""
    app.command("watch")(watch_command)


__all__ = [
    "WatchRow",
    "api_rows",
    "compute_row",
    "market_rows",
    "quality_label",
    "register",
    "render",
    "service_rows",
    "watch_command",
]

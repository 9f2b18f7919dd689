"""Assistant tools for liquidity alerts: create and list rules, recent firings, and liquidity
crunches, through the ``AlertService`` in ``deps.alerts`` (analytics.alerts evaluates the rules).

Rules live as long as the service (in memory, or in the database when the service has one). The
service observes books when it is ticked; ``liquidity_alerts`` takes one observation of the
asset's books now, so the answer always reflects the current books and says how many
observations the crunch detection had. On recorded data the books were sampled while their
recordings replayed (``MarketData.depth_history``); crunches are then detected per book, since
the venues' captures are from different dates.
"""

from __future__ import annotations

from pydantic_ai import ModelRetry, RunContext

from market_liquidity_monitor.agent.tools import (
    AgentDeps,
    _book_row,
    _logged,
    assets_on_several_venues,
    venue_books,
)
from market_liquidity_monitor.domain.errors import MLMError, UnknownSymbolError, UnknownVenueError
from market_liquidity_monitor.domain.instrument import InstrumentId

#: Depth window (bps) used for crunch detection when the question names none.
CRUNCH_WINDOW_BPS = 50.0
#: Depth below this fraction of its rolling median starts a crunch (detect_liquidity_crunches default).
CRUNCH_DROP_RATIO = 0.5


def _service(deps: AgentDeps):
    if deps.alerts is None:
        raise ModelRetry("Liquidity alerts are not available in this deployment (no alert service).")
    return deps.alerts


@_logged
async def create_alert(
    ctx: RunContext[AgentDeps],
    symbol: str,
    metric: str,
    comparison: str,
    threshold: float,
    venue: str | None = None,
    window_bps: float | None = None,
    side: str | None = None,
    lookback: int | None = None,
    period_s: float | None = None,
    cooldown_s: float | None = None,
) -> dict:
    """Create a liquidity alert rule, evaluated on every observation of the book(s).

    Args:
        symbol: base asset ("BTC") or unified pair; resolved to the venue's book.
        metric: mid_price (quote), spread_bps, depth_notional (quote), depth_size (base),
            imbalance (-1..1), zscore, volume (base), volatility (bps).
        comparison: above, below, crosses_above, crosses_below, crosses.
        threshold: in the metric's unit.
        venue: ccxt id; default venue if omitted.
        window_bps: depth window for depth_* and imbalance (default 50).
        side: both, bid or ask (depth_*). lookback: observations (zscore, volatility; default 20).
        period_s: trailing seconds (volume; default 300). cooldown_s: seconds between firings (300).
    """
    deps = ctx.deps
    service = _service(deps)
    try:
        inst = deps.market.resolve(symbol, venue or deps.settings.agent.default_venue)
    except (UnknownVenueError, UnknownSymbolError) as exc:
        raise ModelRetry(str(exc)) from exc
    spec = {
        "symbol": inst.symbol,
        "venue": inst.venue,
        "metric": metric,
        "comparison": comparison,
        "threshold": threshold,
        "window_bps": window_bps,
        "side": side,
        "lookback": lookback,
        "period_s": period_s,
        "cooldown_s": cooldown_s,
    }
    m = str(metric).lower()
    if m.startswith("depth") or m == "imbalance":
        spec["window_bps"] = window_bps or CRUNCH_WINDOW_BPS
    if m in ("zscore", "volatility"):
        spec["lookback"] = lookback or 20
    if m == "volume":
        spec["period_s"] = period_s or 300.0
    try:
        rule = await service.create_rule({k: v for k, v in spec.items() if v is not None})
        service.sample()
    except MLMError as exc:
        raise ModelRetry(str(exc)) from exc
    res = {
        "rule": rule.to_dict(),
        "description": rule.describe(),
        "rules_total": len(await service.list_rules()),
        "book": _book_row(deps.market.view(inst)),
    }
    return res


@_logged
async def list_alerts(ctx: RunContext[AgentDeps]) -> dict:
    """Every alert rule (id, symbol, venue, metric, comparison, threshold, cooldown) and how many
    events each has fired recently."""
    deps = ctx.deps
    service = _service(deps)
    rules = await service.list_rules()
    events = await service.recent_events(limit=1000)
    res = {
        "rules": [
            {**r.to_dict(), "description": r.describe(), "events": sum(e.rule_id == r.id for e in events)}
            for r in rules
        ],
        "rules_total": len(rules),
    }
    return res


@_logged
async def liquidity_alerts(
    ctx: RunContext[AgentDeps],
    symbol: str,
    venue: str | None = None,
    window_bps: float | None = None,
    drop_ratio: float | None = None,
) -> dict:
    """Recent alert firings and liquidity anomalies of one asset: events fired by the rules,
    liquidity crunches (depth within ``window_bps`` falling below half its rolling median until it
    recovers; analytics.alerts.detect_liquidity_crunches) and feed anomalies of each book
    (crossed, stale, sequence gaps, checksum failures). Observes the asset's books once now.

    Args:
        symbol: base asset ("BTC") or unified pair.
        venue: one ccxt id; every venue with a book of the asset if omitted.
        window_bps: depth window of the crunch detection (default 50).
        drop_ratio: a crunch starts when depth falls below this fraction of its rolling median
            (0..1, default 0.5).
    """
    deps = ctx.deps
    service = _service(deps)
    venues = [venue.strip().lower()] if venue else deps.market.venues()
    views, missing = venue_books(deps, symbol, venues)
    if not views:
        raise ModelRetry(
            f"No book of {symbol!r} to watch: "
            + "; ".join(m["reason"] for m in missing[:6])
            + f". Assets with USD-quoted books on several venues: {assets_on_several_venues(deps.market)}."
        )
    service.watch_symbols.update(v.instrument.symbol for v in views)
    window = float(window_bps or CRUNCH_WINDOW_BPS)
    try:
        service.sample()
        await service.flush()
    except MLMError as exc:
        raise ModelRetry(str(exc)) from exc
    events, crunches = [], []
    drop = float(drop_ratio or CRUNCH_DROP_RATIO)
    recorded = deps.market.is_recorded
    for sym in sorted({v.instrument.symbol for v in views}):
        events += [e.model_dump(mode="json") for e in await service.recent_events(limit=50, symbol=sym)]
        # Recorded captures of different venues are from different dates: one series per book.
        if recorded:
            targets = [v.instrument.venue for v in views if v.instrument.symbol == sym]
        else:
            targets = [venue.strip().lower() if venue else None]
        for ven in targets:
            row = {"symbol": sym, "venue": ven}
            hist = deps.market.depth_history(InstrumentId(ven, sym)) if ven and recorded else None
            if hist is not None:
                row["sampled_during_replay"] = {
                    "recording": hist.recording,
                    "every_depth_updates": hist.every,
                }
            try:
                rep = service.crunches(sym, window, venue=ven, drop_ratio=drop)
                crunches.append({**row, "available": True, **rep.model_dump(mode="json")})
            except MLMError as exc:
                crunches.append({**row, "available": False, "reason": str(exc)})
    books = [_book_row(v) for v in views]
    anomalies = [b for b in books if b["quality_warning"]]
    obs = {
        f"{v.instrument.venue}:{v.instrument.symbol}": len(
            service.observations(v.instrument.venue, v.instrument.symbol)
        )
        for v in views
    }
    res = {
        "symbol": symbol,
        "window_bps": window,
        "drop_ratio": drop,
        "books": books,
        "books_observed": len(books),
        "book_anomalies": len(anomalies),
        "events": events,
        "events_total": len(events),
        "crunches": crunches,
        "crunch_episodes": sum(len(c.get("episodes", [])) for c in crunches if c.get("available")),
        "observations_per_book": obs,
        "rules_total": len(await service.list_rules()),
        "unavailable": missing,
    }
    return res


ALERT_TOOLS = (create_alert, list_alerts, liquidity_alerts)

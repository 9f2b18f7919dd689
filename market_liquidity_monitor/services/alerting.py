"""AlertAnswers: alert rules and liquidity anomalies as answers (create, list, what fired, crunches),
over the ``AlertService`` (rules, evaluation, events) and ``BookService``.

A rule is only accepted for a book that exists (``BookService.resolve``: an unknown symbol or
venue is refused with the closest valid ones), so every rule can fire.
"""

from __future__ import annotations

from typing import Any

from market_liquidity_monitor.analytics.alerts import AlertEvent
from market_liquidity_monitor.analytics.liquidity import Result, check_window
from market_liquidity_monitor.domain.errors import InvalidInputError, MLMError
from market_liquidity_monitor.domain.instrument import InstrumentId
from market_liquidity_monitor.domain.time import iso_ns
from market_liquidity_monitor.services.books import BookProvenance, BookService, Unavailable

__all__ = [
    "CRUNCH_DROP_RATIO",
    "CRUNCH_WINDOW_BPS",
    "AlertAnswers",
    "AlertListAnswer",
    "AlertRuleView",
    "CreateAlertAnswer",
    "CrunchScan",
    "LiquidityAlertsAnswer",
]

#: Depth window (bps) of crunch detection when the question names none.
CRUNCH_WINDOW_BPS = 50.0
#: Depth below this fraction of its rolling median starts a crunch (detect_liquidity_crunches default).
CRUNCH_DROP_RATIO = 0.5


class AlertRuleView(Result):
    """One rule as stored (``AlertRule.to_dict``), described in one line, with its recent firings."""

    rule: dict[str, Any]
    description: str
    events: int = 0


class CreateAlertAnswer(Result):
    rule: dict[str, Any]
    description: str
    rules_total: int
    book: BookProvenance | None


class AlertListAnswer(Result):
    rules: list[AlertRuleView]
    rules_total: int


class CrunchScan(Result):
    """Crunch detection over one depth series (one book, or every venue of a symbol live).
    ``report``: ``analytics.alerts.LiquidityCrunchReport`` as a dict; None with ``reason``."""

    symbol: str
    venue: str | None
    available: bool
    reason: str | None = None
    sampled_during_replay: dict[str, Any] | None = None
    # The series came from the stored liquidity history: {"table", "rows", "interval_s"}.
    stored_history: dict[str, Any] | None = None
    report: dict[str, Any] | None = None


class LiquidityAlertsAnswer(Result):
    """What fired for one asset, its liquidity crunches, and each book's feed anomalies."""

    symbol: str
    window_bps: float
    drop_ratio: float
    lookback_days: float | None = None
    since: str | None = None  # ISO UTC start of the lookback, when one was asked
    books: list[BookProvenance]
    books_observed: int
    book_anomalies: int
    events: list[AlertEvent]
    events_total: int
    crunches: list[CrunchScan]
    crunch_episodes: int
    observations_per_book: dict[str, int]
    rules_total: int
    unavailable: list[Unavailable]


def _num(name: str, value: Any, lo: float, hi: float) -> None:
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int | float) or not lo < value <= hi
    ):
        raise InvalidInputError(f"{name} must be a number in ({lo:g}, {hi:g}], got {value!r}")


class AlertAnswers:
    """``history``: the ``HistoryService``; crunch detection reads its stored depth series when
    present (else the in-memory samples)."""

    def __init__(self, alerts: Any, books: BookService, history: Any = None):
        self.alerts = alerts
        self.books = books
        self.history = history

    async def create(
        self,
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
    ) -> CreateAlertAnswer:
        """Create a rule on the book of ``symbol`` on ``venue`` (default venue); defaults: depth and
        imbalance windows 50 bps, z-score/volatility lookback 20, volume period 300 s. Raises
        ``InvalidInputError`` (bad rule; the valid values named), ``UnknownVenueError`` /
        ``UnknownSymbolError`` (no such book)."""
        venue = self.books.canonical(venue or self.books.settings.agent.default_venue)
        inst = await self.books.resolve(symbol, venue)
        spec: dict[str, Any] = {
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
        m = str(metric).strip().lower()
        if m.startswith("depth") or m == "imbalance":
            spec["window_bps"] = window_bps or CRUNCH_WINDOW_BPS
        if m in ("zscore", "volatility"):
            spec["lookback"] = lookback or 20
        if m == "volume":
            spec["period_s"] = period_s or 300.0
        rule = await self.alerts.create_rule({k: v for k, v in spec.items() if v is not None})
        self.alerts.sample()
        try:
            book = (await self.books.book(inst)).provenance
        except MLMError:
            book = None
        return CreateAlertAnswer(
            rule=rule.to_dict(),
            description=rule.describe(),
            rules_total=len(await self.alerts.list_rules()),
            book=book,
        )

    async def list(self) -> AlertListAnswer:
        """Every rule with how many events it fired recently."""
        rules = await self.alerts.list_rules()
        events = await self.alerts.recent_events(limit=1000)
        return AlertListAnswer(
            rules=[
                AlertRuleView(
                    rule=r.to_dict(), description=r.describe(), events=sum(e.rule_id == r.id for e in events)
                )
                for r in rules
            ],
            rules_total=len(rules),
        )

    async def liquidity_alerts(
        self,
        symbol: str,
        venue: str | None = None,
        window_bps: float | None = None,
        drop_ratio: float | None = None,
        lookback_days: float | None = None,
    ) -> LiquidityAlertsAnswer:
        """Rule firings, liquidity crunches (depth within ``window_bps`` below ``drop_ratio`` x its
        rolling median; ``analytics.alerts.detect_liquidity_crunches``) and feed anomalies of the
        asset's books. Observes the books once now. ``lookback_days``: only events and crunch
        episodes of that many days before the newest book's time (the recording's time on recorded
        data). Raises ``InvalidInputError`` when no venue has a book of the asset (the reasons
        listed)."""
        window = check_window(window_bps if window_bps is not None else CRUNCH_WINDOW_BPS)
        _num("drop_ratio", drop_ratio, 0.0, 1.0)
        _num("lookback_days", lookback_days, 0.0, 3650.0)
        drop = float(drop_ratio if drop_ratio is not None else CRUNCH_DROP_RATIO)
        books, missing = await self.books.books(symbol, [venue] if venue else None)
        if not books:
            raise InvalidInputError(
                f"no book of {symbol!r} to watch: "
                + "; ".join(f"{m.venue}: {m.reason}" for m in missing[:6])
                + f". Assets with USD-quoted books on several venues: {self.books.assets_on_several_venues()}."
            )
        svc = self.alerts
        await svc.ensure_loaded()  # rules loaded on first use (Services.start with defer_storage)
        svc.watch_symbols.update(b.instrument.symbol for b in books)
        svc.sample()
        await svc.flush()
        events: list[AlertEvent] = []
        scans: list[CrunchScan] = []
        recorded = self.books.is_recorded
        for sym in sorted({b.instrument.symbol for b in books}):
            events += await svc.recent_events(limit=50, symbol=sym)
            # Recorded captures of different venues are from different dates: one series per book.
            targets = (
                [b.instrument.venue for b in books if b.instrument.symbol == sym]
                if recorded
                else [self.books.canonical(venue) if venue else None]
            )
            for ven in targets:
                replay = stored_info = stored = None
                if ven and self.history is not None:
                    found = await self.history.depth_series(ven, sym, window)
                    if found is not None:
                        stored = {ven: (found[0], found[1])}
                        stored_info = {
                            "table": "book_metric_depths",
                            "rows": found[2],
                            "interval_s": self.history.interval_s,
                        }
                if ven and recorded and stored is None:
                    hist = self.books.market.depth_history(InstrumentId(ven, sym))
                    if hist is not None:
                        replay = {"recording": hist.recording, "every_depth_updates": hist.every}
                try:
                    rep = svc.crunches(sym, window, venue=ven, drop_ratio=drop, stored=stored)
                    if stored is not None and rep.n_observations != len(stored[ven][0]):
                        stored_info = None  # too short: the detector used its other samples
                    if stored is not None and stored_info is None and ven and recorded:
                        hist = self.books.market.depth_history(InstrumentId(ven, sym))
                        if hist is not None:
                            replay = {"recording": hist.recording, "every_depth_updates": hist.every}
                    scans.append(
                        CrunchScan(
                            symbol=sym,
                            venue=ven,
                            available=True,
                            sampled_during_replay=replay,
                            stored_history=stored_info,
                            report=rep.model_dump(mode="json"),
                        )
                    )
                except MLMError as exc:
                    scans.append(
                        CrunchScan(
                            symbol=sym,
                            venue=ven,
                            available=False,
                            reason=str(exc),
                            sampled_during_replay=replay,
                        )
                    )
        provs = [b.provenance for b in books]
        since_ns = None
        if lookback_days is not None:
            newest = max((p.book_ts_ns for p in provs if p.book_ts_ns is not None), default=None)
            if newest is not None:
                since_ns = newest - int(lookback_days * 86_400e9)
                events = [e for e in events if e.ts_ns >= since_ns]
                scans = [
                    s
                    if not (s.available and s.report)
                    else s.model_copy(
                        update={
                            "report": {
                                **s.report,
                                "episodes": [
                                    ep for ep in s.report.get("episodes", []) if ep["onset_ts_ns"] >= since_ns
                                ],
                            }
                        }
                    )
                    for s in scans
                ]
        return LiquidityAlertsAnswer(
            symbol=symbol,
            window_bps=window,
            drop_ratio=drop,
            lookback_days=lookback_days,
            since=None if since_ns is None else iso_ns(since_ns),
            books=provs,
            books_observed=len(provs),
            book_anomalies=sum(1 for p in provs if p.quality_warning),
            events=events,
            events_total=len(events),
            crunches=scans,
            crunch_episodes=sum(len((s.report or {}).get("episodes", [])) for s in scans if s.available),
            observations_per_book={
                f"{b.instrument.venue}:{b.instrument.symbol}": len(
                    svc.observations(b.instrument.venue, b.instrument.symbol)
                )
                for b in books
            },
            rules_total=len(await svc.list_rules()),
            unavailable=missing,
        )

"""``.to_pandas()`` for the service answers that hold a table or a series.

The answers stay the typed pydantic models every interface returns (``services``); this mixin
only adds a method that lays one of their tables out as a ``pandas.DataFrame``, with the units of
its columns and the source of its numbers in ``DataFrame.attrs``:

- ``attrs["units"]``: ``{column: unit}`` — ``"quote"`` / ``"base"`` are replaced by the asset's
  own currencies (``BTC/USDT``: base ``BTC``, quote ``USDT``), plus ``bps`` and ``ISO 8601 UTC``;
- ``attrs["source"]``: where the numbers come from (book provenance, candle source, formula).

Nothing is recomputed here: every cell is a field of the answer, copied; the cumulative columns
of an order book are running sums of its levels (``numpy.cumsum``) and the distance from mid is
``(price - mid) / mid * 1e4`` for asks and ``(mid - price) / mid * 1e4`` for bids (bps).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pandas loads on first use: importing the services stays cheap
    import pandas as pd

__all__ = ["Tabular", "to_pandas"]


class Tabular:
    """Mixin of the answers with a table: ``answer.to_pandas(table=...)`` (``to_pandas``)."""

    __slots__ = ()

    def to_pandas(self, table: str | None = None) -> pd.DataFrame:
        """One table of this answer as a ``DataFrame`` (units and source in ``.attrs``).

        ``table`` names which one when the answer has several (see ``TABLES`` of the answer type
        in ``services.tabular.to_pandas``); None gives the first. Raises ``ValueError`` naming the
        valid tables, or saying what to ask for when the answer carries no such table (e.g. an
        order book asked with ``levels=0``, a backtest without ``series=True``)."""
        return to_pandas(self, table)


# ----------------------------------------------------------------------------- helpers


def _currencies(symbol: str | None) -> tuple[str, str]:
    """``(base, quote)`` of a unified symbol (``BTC/USDT:USDT`` -> ``("BTC", "USDT")``)."""
    if not symbol or "/" not in symbol:
        return "base", "quote"
    base, _, rest = symbol.partition("/")
    return base, rest.split(":")[0] or "quote"


def _frame(rows: list[dict[str, Any]], columns: list[str], units: dict[str, str], source: Any, **attrs):
    import pandas as pd

    df = pd.DataFrame(rows, columns=columns)
    df.attrs.update(units={k: v for k, v in units.items() if k in df.columns}, source=source, **attrs)
    return df


def _order_book(a: Any, table: str) -> pd.DataFrame:
    import numpy as np

    base, quote = _currencies(a.symbol)
    mid = a.top_of_book.mid_price
    source = a.book.model_dump(mode="json")
    if table == "depth":
        cols = [
            "window_bps",
            "bid_size",
            "bid_notional",
            "bid_levels",
            "ask_size",
            "ask_notional",
            "ask_levels",
        ]
        rows = [{c: getattr(d, c) for c in cols} for d in a.depth]
        units = {
            "window_bps": "bps",
            "bid_size": base,
            "ask_size": base,
            "bid_notional": quote,
            "ask_notional": quote,
            "bid_levels": "levels",
            "ask_levels": "levels",
        }
        return _frame(rows, cols, units, source, book_ts=a.book_ts, mid_price=mid)
    if a.bids is None or a.asks is None:
        raise ValueError(
            "this order book answer has no levels: ask for them with levels=N (1..1000), "
            "e.g. Monitor.book('BTC', levels=20)"
        )
    rows = []
    for side, levels, sign in (("bid", a.bids, -1.0), ("ask", a.asks, 1.0)):
        prices = np.array([p for p, _ in levels], dtype=float)
        sizes = np.array([s for _, s in levels], dtype=float)
        notional = prices * sizes
        for i, (p, s, n, cs, cn) in enumerate(
            zip(prices, sizes, notional, np.cumsum(sizes), np.cumsum(notional), strict=True), 1
        ):
            rows.append(
                {
                    "side": side,
                    "level": i,
                    "price": float(p),
                    "size": float(s),
                    "notional": float(n),
                    "cum_size": float(cs),
                    "cum_notional": float(cn),
                    "distance_bps": float(sign * (p - mid) / mid * 1e4),
                }
            )
    cols = ["side", "level", "price", "size", "notional", "cum_size", "cum_notional", "distance_bps"]
    units = {
        "price": f"{quote} per {base}",
        "size": base,
        "cum_size": base,
        "notional": quote,
        "cum_notional": quote,
        "distance_bps": "bps from mid",
    }
    return _frame(rows, cols, units, source, book_ts=a.book_ts, mid_price=mid)


def _unavailable(a: Any) -> pd.DataFrame:
    rows = [{"venue": u.venue, "kind": u.kind, "reason": u.reason} for u in a.unavailable]
    return _frame(rows, ["venue", "kind", "reason"], {}, "BookService: venues without a usable book")


def _compare(a: Any, table: str) -> pd.DataFrame:
    if table == "unavailable":
        return _unavailable(a)
    base, quote = _currencies(a.symbol)
    cols = [
        "venue",
        "symbol",
        "market_type",
        "rank",
        "fully_filled",
        "cost_bps",
        "cost_quote",
        "slippage_bps",
        "fee_bps",
        "fee_source",
        "vwap",
        "vwap_incl_fees",
        "mid_price",
        "spread_bps",
        "filled_size",
        "filled_notional",
        "window_bps",
        "depth_notional",
        "depth_share",
        "book_ts",
        "book_source",
        "reason",
        "book_warning",
    ]
    rows = []
    for r in a.venues:
        row = {c: getattr(r, c, None) for c in cols}
        row["book_source"] = str(r.book.source)
        rows.append(row)
    price = f"{quote} per {base}"
    units = {
        "cost_bps": "bps of mid (fee included)",
        "cost_quote": quote,
        "slippage_bps": "bps of mid (fee excluded)",
        "fee_bps": "bps",
        "vwap": price,
        "vwap_incl_fees": price,
        "mid_price": price,
        "spread_bps": "bps",
        "filled_size": base,
        "filled_notional": quote,
        "window_bps": "bps",
        "depth_notional": quote,
        "depth_share": "fraction",
        "book_ts": "ISO 8601 UTC",
    }
    df = _frame(
        rows, cols, units, {"books": "BookService (book_source per row)", "fees": dict(a.fee_sources)}
    )
    df["rank"] = df["rank"].astype("Int64")  # None for a venue that cannot fill the whole order
    return df


def _route(a: Any, table: str) -> pd.DataFrame:
    base, quote = _currencies(a.symbol)
    price = f"{quote} per {base}"
    source = {"books": [b.model_dump(mode="json") for b in a.books], "fees": dict(a.fee_sources)}
    if table == "unavailable":
        rows = [{"venue": u.venue, "kind": u.kind, "reason": u.reason} for u in a.unavailable]
        rows += [{"venue": v, "kind": "excluded", "reason": why} for v, why in a.excluded.items()]
        return _frame(rows, ["venue", "kind", "reason"], {}, "BookService and routing_exclusions")
    if table == "baselines":
        cols = [
            "name",
            "fillable",
            "avg_price_incl_fees",
            "total_quote",
            "savings_bps",
            "savings_quote",
            "reason",
        ]
        rows = [{c: getattr(b, c) for c in cols} for b in a.baselines]
        units = {
            "avg_price_incl_fees": price,
            "total_quote": quote,
            "savings_bps": "bps (positive: routing is cheaper)",
            "savings_quote": quote,
        }
        return _frame(rows, cols, units, source)
    cols = [
        "venue",
        "symbol",
        "side",
        "size",
        "share",
        "notional",
        "vwap",
        "fee_bps",
        "fee_quote",
        "total_quote",
        "levels_consumed",
        "worst_price",
        "book_ts",
    ]
    filled = sum(c.size for c in a.routed.children) or None
    rows = []
    for c in a.routed.children:
        row = {k: getattr(c, k, None) for k in cols}
        row["side"] = str(c.side)
        row["share"] = c.size / filled if filled else None
        rows.append(row)
    units = {
        "size": base,
        "share": "fraction of the filled size",
        "notional": f"{quote} (fees excluded)",
        "vwap": price,
        "fee_bps": "bps",
        "fee_quote": quote,
        "total_quote": f"{quote} (paid incl. fees on a buy, received net of fees on a sell)",
        "worst_price": price,
        "book_ts": "ISO 8601 UTC",
    }
    return _frame(rows, cols, units, source)


def _backtest(a: Any, table: str) -> pd.DataFrame:
    import pandas as pd

    base, quote = _currencies(a.symbol)
    price = f"{quote} per {base}"
    source = {"candles": a.candles.model_dump(mode="json"), "model": a.model_info.note}
    if table == "slices":
        cols = [
            "ts",
            "size",
            "mid_price",
            "fill_price",
            "slippage_bps",
            "fee_quote",
            "size_factor",
            "cost_factor",
            "extrapolated",
        ]
        rows = [s.model_dump() for s in a.order.slices]
        df = _frame(
            rows,
            cols,
            {
                "ts": "ISO 8601 UTC",
                "size": base,
                "mid_price": price,
                "fill_price": price,
                "slippage_bps": "bps of mid",
                "fee_quote": quote,
            },
            source,
        )
    else:
        if a.result.series is None:
            raise ValueError(
                "this backtest answer has no per-candle series: ask for it with series=True "
                "(Monitor.backtest asks for it by default)"
            )
        cols = ["ts", "slippage_bps", "fill_price", "high_risk", "optimal"]
        df = _frame(
            list(a.result.series),
            cols,
            {"ts": "ISO 8601 UTC", "slippage_bps": "bps of mid", "fill_price": price},
            source,
            bucket_intervals=a.result.series_bucket_intervals,
            high_risk_threshold_bps=a.result.high_risk_threshold_bps,
            optimal_threshold_bps=a.result.optimal_threshold_bps,
        )
    attrs = dict(df.attrs)
    df = df.set_index(pd.DatetimeIndex(pd.to_datetime(df.pop("ts"), utc=True), name="ts"))
    df.attrs.update(attrs)
    return df


def _pairs(a: Any, table: str) -> pd.DataFrame:
    import pandas as pd

    if a.series is None:
        raise ValueError(
            "this pairs answer has no series: ask for it with series=True (Monitor.pairs asks for it by default)"
        )
    s = a.series
    df = pd.DataFrame(
        {"spread": s.spread, "zscore": s.zscore, "return_corr": s.return_corr},
        index=pd.DatetimeIndex(pd.to_datetime(s.ts, utc=True), name="ts"),
        dtype=float,
    )
    df.attrs.update(
        units={
            "spread": f"log units: ln({a.symbol_a}) - {a.analysis.hedge_ratio_ols:.6g} * ln({a.symbol_b}) - alpha",
            "zscore": f"standard deviations (rolling {a.analysis.zscore_window} points)",
            "return_corr": f"correlation of log returns (rolling {a.analysis.corr_window} points)",
        },
        source={
            "candles": [c.model_dump(mode="json") for c in a.candles],
            "formula": "analytics.pairs.pair_series",
        },
    )
    return df


def _health(a: Any, table: str) -> pd.DataFrame:
    cols = list(a.books[0].model_dump()) if a.books else ["venue", "symbol", "source", "warning"]
    return _frame(
        [b.model_dump() for b in a.books],
        cols,
        {"age_ms": "ms", "stale_after_ms": "ms", "last_gap_ts_ns": "ns since the Unix epoch"},
        "BookStore integrity counters (ingest.store.QUALITY_KEYS)",
    )


#: ``{answer class name: (tables, builder)}``; the first table is the default.
_TABLES: dict[str, tuple[tuple[str, ...], Any]] = {
    "OrderBookAnswer": (("levels", "depth"), _order_book),
    "CompareAnswer": (("venues", "unavailable"), _compare),
    "RouteAnswer": (("legs", "baselines", "unavailable"), _route),
    "BacktestAnswer": (("series", "slices"), _backtest),
    "PairsAnswer": (("series",), _pairs),
    "HealthAnswer": (("books",), _health),
}


def to_pandas(answer: Any, table: str | None = None) -> pd.DataFrame:
    """``answer``'s table ``table`` as a ``DataFrame``.

    Tables per answer (first = default): ``OrderBookAnswer``: ``levels`` (one row per level, bids
    then asks, best first; needs ``levels`` > 0), ``depth`` (one row per depth window);
    ``CompareAnswer``: ``venues`` (one row per compared venue), ``unavailable`` (venues left out
    and why); ``RouteAnswer``: ``legs`` (one row per child order), ``baselines``, ``unavailable``
    (left out and excluded venues with the reason); ``BacktestAnswer``: ``series`` (per-candle
    cost curve indexed by UTC time; needs ``series=True``), ``slices`` (the order's child orders);
    ``PairsAnswer``: ``series`` (spread, z-score, rolling return correlation by UTC time; needs
    ``series=True``); ``HealthAnswer``: ``books``. Raises ``ValueError`` for another answer type
    or table name (the valid ones named)."""
    name = type(answer).__name__
    if name not in _TABLES:
        raise ValueError(f"{name} has no table; answers with one: {', '.join(_TABLES)}")
    tables, build = _TABLES[name]
    table = tables[0] if table is None else table
    if table not in tables:
        raise ValueError(f"{name} has no table {table!r}; valid tables: {', '.join(tables)}")
    return build(answer, table)

"""Worked example of the Python API (docs/python_api.md), one notebook cell per section.

Run it as a script on the recorded data (CI runs it: tests/unit/test_notebook_example.py checks
every figure it prints against the service layer and an independent recomputation):

    python docs/notebook_example.py ../shared/data

or paste the body of ``main`` into Jupyter cells. Each figure is printed as ``name = value unit``.
The first question about a book replays its recording (a few seconds); the first candle question
imports the candle files into ``./data/mlm.sqlite3`` (``home=`` of ``Monitor.from_recordings``
puts it elsewhere).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from market_liquidity_monitor import Monitor


def show(name: str, value: float, unit: str) -> None:
    """One figure, as ``name = 1,234.5678 unit``."""
    print(f"{name} = {value:,.4f} {unit}")


def main(data_dir: str | Path) -> Monitor:
    """Ask every kind of question once; returns the (still open) monitor."""
    pd.set_option("display.width", 160)
    pd.set_option("display.max_columns", 12)

    # --- 1. open the recordings (books replay on first use)
    m = Monitor.from_recordings(data_dir)
    print(m)

    # --- 2. one order book: top of book, depth, levels (prices USDT per BTC, sizes BTC)
    book = m.book("BTC", "binance", levels=10)
    top = book.top_of_book
    print(f"book: {book.book.venue} {book.book.symbol} at {book.book.book_ts} ({book.book.source})")
    show("book.best_bid", top.best_bid, "USDT")
    show("book.best_ask", top.best_ask, "USDT")
    show("book.spread_bps", top.spread_bps, "bps")
    levels = book.to_pandas()  # one row per level, bids then asks, best first
    print(levels.head(5).to_string(index=False))
    show("book.ask_cum_size_10", levels[levels.side == "ask"].cum_size.iloc[-1], "BTC")
    depth = book.to_pandas("depth")
    show("book.ask_notional_25bps", depth.set_index("window_bps").loc[25.0, "ask_notional"], "USDT")

    # --- 3. market impact of a 5 BTC market buy, and the largest buy within 10 bps
    imp = m.impact("BTC", "buy", size=5, venue="binance")
    show("impact.vwap", imp.vwap, "USDT per BTC")
    show("impact.slippage_bps", imp.slippage_bps, "bps")
    cap = m.max_size("BTC", "buy", 10, venue="binance")
    show("max_size.size", cap.size, "BTC")

    # --- 4. the same order on every venue (fee included), and the venues left out
    cmp = m.compare("BTC", "buy", size=5)
    table = cmp.to_pandas()
    print(table[["venue", "rank", "cost_bps", "fee_bps", "vwap", "book_ts"]].to_string(index=False))
    print(f"compare.best_venue = {cmp.best_venue}")
    show("compare.best_cost_bps", table.set_index("venue").loc[cmp.best_venue, "cost_bps"], "bps")
    print(cmp.to_pandas("unavailable").to_string(index=False))

    # --- 5. route 50 BTC across the venues (simulation)
    route = m.route("BTC", "buy", size=50)
    legs = route.to_pandas()
    print(legs[["venue", "size", "share", "vwap", "fee_quote"]].to_string(index=False))
    print(f"route.legs = {len(legs)} legs")
    show("route.cost_vs_mid_bps", route.cost_vs_mid_bps, "bps")

    # --- 6. backtest: 5 BTC bought at the start of the last 7 days of candles
    bt = m.backtest("BTC", "buy", size=5, lookback_days=7)
    show("backtest.cost_vs_arrival_bps", bt.order.cost_vs_arrival_bps, "bps")
    show("backtest.pnl_quote", bt.order.pnl_quote, "USDT")
    curve = bt.to_pandas()  # per-candle slippage of the same order, indexed by UTC time
    show("backtest.max_slippage_bps", curve.slippage_bps.max(), "bps")

    # --- 7. pairs: BTC vs ETH hourly closes, 30 days
    pair = m.pairs("BTC", "ETH")
    show("pairs.hedge_ratio_ols", pair.analysis.hedge_ratio_ols, "ln BTC per ln ETH")
    spread = pair.to_pandas()
    show("pairs.zscore_last", spread.zscore.dropna().iloc[-1], "std")
    print(f"pairs.points = {len(spread)} points")

    # --- 8. price history
    hist = m.price_history("BTC", lookback_days=7)
    show("history.return_pct", hist.trend["return_pct"], "%")
    return m


if __name__ == "__main__":
    here = Path(__file__).resolve().parents[1]
    monitor = main(sys.argv[1] if len(sys.argv) > 1 else here.parent / "shared" / "data")
    monitor.close()

"""The Python API (``Monitor``) and its worked example docs/notebook_example.py, on the recorded data.

The example runs as a notebook would run it; every figure it prints is checked against the
service layer's own answer (the facade must return exactly what ``Services`` returns) and against
an independent recomputation: a Decimal walk of the book levels for impact and depth, numpy least
squares on the candle file for the pairs hedge ratio, sums of the route legs.
"""

from __future__ import annotations

import asyncio
import re
import runpy
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from market_liquidity_monitor import Monitor
from market_liquidity_monitor.domain.errors import InvalidInputError
from market_liquidity_monitor.services import (
    BacktestAnswer,
    CompareAnswer,
    ImpactAnswer,
    OrderBookAnswer,
    PairsAnswer,
    RouteAnswer,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "notebook_example.py"
FIGURE = re.compile(r"^([a-z_]+\.[a-z_0-9]+) = (\S+)", re.M)


@pytest.fixture(scope="module")
def example(data_dir, tmp_path_factory):
    """(printed figures, printed text, the example's open Monitor)."""
    import contextlib
    import io
    import os

    home = tmp_path_factory.mktemp("notebook")
    cwd = os.getcwd()
    os.chdir(home)  # the example's ./data/mlm.sqlite3 lands here
    out = io.StringIO()
    try:
        ns = runpy.run_path(str(EXAMPLE), run_name="notebook_example")
        with contextlib.redirect_stdout(out):
            m = ns["main"](data_dir)
    finally:
        os.chdir(cwd)
    text = out.getvalue()
    figures = {k: v.replace(",", "") for k, v in FIGURE.findall(text)}
    yield figures, text, m
    m.close()


def num(figures: dict[str, str], name: str) -> float:
    assert name in figures, f"the example did not print {name}: {sorted(figures)}"
    return float(figures[name])


def _walk(levels: list[tuple[float, float]], qty: Decimal) -> Decimal:
    """VWAP of taking ``qty`` from ``levels`` best first, in Decimal."""
    left, notional = qty, Decimal(0)
    for p, s in levels:
        take = min(left, Decimal(repr(s)))
        notional += take * Decimal(repr(p))
        left -= take
        if left == 0:
            return notional / qty
    raise AssertionError("the book side is too thin for the order")


def test_book_and_impact_figures(example):
    figures, _, m = example
    ref = m.run(lambda s: s.liquidity.order_book("BTC", "binance", None, 1000))
    assert isinstance(ref, OrderBookAnswer)
    assert num(figures, "book.best_bid") == pytest.approx(ref.bids[0][0], abs=5e-5)
    assert num(figures, "book.best_ask") == pytest.approx(ref.asks[0][0], abs=5e-5)
    mid = (Decimal(repr(ref.bids[0][0])) + Decimal(repr(ref.asks[0][0]))) / 2
    spread_bps = (Decimal(repr(ref.asks[0][0])) - Decimal(repr(ref.bids[0][0]))) / mid * 10_000
    assert num(figures, "book.spread_bps") == pytest.approx(float(spread_bps), abs=5e-5)
    assert num(figures, "book.ask_cum_size_10") == pytest.approx(
        float(sum(Decimal(repr(s)) for _, s in ref.asks[:10])), abs=5e-5
    )
    bound = mid * (1 + Decimal(25) / 10_000)
    inside = sum(Decimal(repr(p)) * Decimal(repr(s)) for p, s in ref.asks if Decimal(repr(p)) <= bound)
    assert ref.ask_levels <= 1000 or ref.asks[-1][0] > float(bound)  # the 25 bps window is inside 1000 levels
    assert num(figures, "book.ask_notional_25bps") == pytest.approx(float(inside), abs=5e-5)

    imp = m.impact("BTC", "buy", size=5, venue="binance")
    assert type(imp) is ImpactAnswer
    assert imp == m.run(lambda s: s.liquidity.impact("BTC", "buy", size=5, venue="binance"))
    vwap = _walk(ref.asks, Decimal(5))
    assert num(figures, "impact.vwap") == pytest.approx(float(vwap), abs=5e-5)
    assert num(figures, "impact.slippage_bps") == pytest.approx(float((vwap - mid) / mid * 10_000), abs=5e-5)
    cap = m.run(lambda s: s.liquidity.max_size("BTC", "buy", 10, "binance"))
    assert num(figures, "max_size.size") == pytest.approx(cap.size, abs=5e-5)
    # the largest buy within 10 bps walks to a VWAP within 10 bps of mid (Decimal walk)
    assert (_walk(ref.asks, Decimal(repr(cap.size))) - mid) / mid * 10_000 <= Decimal("10.000001")


def test_book_levels_table(example):
    _, _, m = example
    book = m.book("BTC", "binance", levels=10)
    df = book.to_pandas()
    assert list(df.side) == ["bid"] * 10 + ["ask"] * 10
    asks = df[df.side == "ask"]
    assert asks.price.is_monotonic_increasing and df[df.side == "bid"].price.is_monotonic_decreasing
    assert asks.cum_notional.iloc[-1] == pytest.approx(sum(p * s for p, s in book.asks), rel=1e-12)
    assert df.attrs["units"]["price"] == "USDT per BTC" and df.attrs["units"]["size"] == "BTC"
    assert df.attrs["source"]["source"] == "recording"
    with pytest.raises(ValueError, match="levels=N"):
        m.book("BTC", "binance", levels=0).to_pandas()
    with pytest.raises(ValueError, match="valid tables: levels, depth"):
        book.to_pandas("legs")


def test_compare_and_route_figures(example):
    figures, text, m = example
    cmp = m.compare("BTC", "buy", size=5)
    assert type(cmp) is CompareAnswer
    table = cmp.to_pandas()
    assert list(table.venue) == [r.venue for r in cmp.venues]
    # the best venue: the lowest cost among full fills of books without a warning (stale, crossed..)
    full = table[table.fully_filled & table.book_warning.isna()]
    best = full.loc[full.cost_bps.idxmin()]
    assert "binanceusdm" in set(table[table.book_warning.notna()].venue)  # its capture stops at 00:00
    assert f"compare.best_venue = {best.venue}" in text
    assert num(figures, "compare.best_cost_bps") == pytest.approx(best.cost_bps, abs=5e-5)
    # cost_bps = (vwap incl. fees - mid) / mid, independently of the analytics
    assert (
        table.cost_bps - (table.vwap_incl_fees - table.mid_price) / table.mid_price * 1e4
    ).abs().max() < 1e-6
    left_out = cmp.to_pandas("unavailable")
    assert set(left_out.venue) == {u.venue for u in cmp.unavailable} and left_out.reason.str.len().min() > 10
    for venue in left_out.venue:  # the example prints who was left out, with the reason
        assert re.search(rf"^\s*{venue}\s+\w+\s+\S", text, re.M), venue

    route = m.route("BTC", "buy", size=50)
    assert type(route) is RouteAnswer
    legs = route.to_pandas()
    assert int(figures["route.legs"]) == len(legs) == len(route.routed.children)
    assert legs["size"].sum() == pytest.approx(50, rel=1e-12)
    assert legs.share.sum() == pytest.approx(1, rel=1e-12)
    assert num(figures, "route.cost_vs_mid_bps") == pytest.approx(route.cost_vs_mid_bps, abs=5e-5)
    excluded = route.to_pandas("unavailable")
    assert set(route.excluded) <= set(excluded.venue)


def test_backtest_pairs_history_figures(example, data_dir):
    figures, _, m = example
    bt = m.backtest("BTC", "buy", size=5, lookback_days=7)
    assert type(bt) is BacktestAnswer
    assert num(figures, "backtest.cost_vs_arrival_bps") == pytest.approx(
        bt.order.cost_vs_arrival_bps, abs=5e-5
    )
    assert num(figures, "backtest.pnl_quote") == pytest.approx(bt.order.pnl_quote, abs=5e-5)
    curve = bt.to_pandas()
    assert isinstance(curve.index, pd.DatetimeIndex) and str(curve.index.tz) == "UTC"
    # downsampling keeps each bucket's worst interval: the series' max is the curve's max
    assert num(figures, "backtest.max_slippage_bps") == pytest.approx(bt.result.max_slippage_bps, abs=5e-5)
    slices = bt.to_pandas("slices")
    assert slices["size"].sum() == pytest.approx(5, rel=1e-9)

    pair = m.pairs("BTC", "ETH")
    assert type(pair) is PairsAnswer
    # OLS of ln(BTC close) on ln(ETH close) over the answer's window, from the candle files
    closes = {}
    for coin in ("BTC", "ETH"):
        df = pd.read_feather(data_dir / "genetrader" / "binance" / f"{coin}_USDT-1h.feather")
        closes[coin] = df.set_index(pd.DatetimeIndex(df["date"]).tz_convert("UTC"))["close"].astype(float)
    start, end = pd.Timestamp(pair.analysis.start), pd.Timestamp(pair.analysis.end)
    a = closes["BTC"][(closes["BTC"].index >= start) & (closes["BTC"].index <= end)]
    b = closes["ETH"].reindex(a.index)
    beta, alpha = np.linalg.lstsq(np.c_[np.log(b), np.ones(len(b))], np.log(a), rcond=None)[0]
    assert len(a) == pair.analysis.n_obs
    assert num(figures, "pairs.hedge_ratio_ols") == pytest.approx(beta, abs=5e-5)
    spread = pair.to_pandas()
    assert int(figures["pairs.points"]) == len(spread)
    ref_spread = np.log(a) - beta * np.log(b) - alpha
    assert np.allclose(spread.spread.to_numpy(), ref_spread.reindex(spread.index).to_numpy(), atol=1e-9)
    assert num(figures, "pairs.zscore_last") == pytest.approx(pair.analysis.zscore_last, abs=5e-5)

    hist = m.price_history("BTC", lookback_days=7)
    assert num(figures, "history.return_pct") == pytest.approx(hist.trend["return_pct"], abs=5e-5)
    c = closes_5m = pd.read_feather(data_dir / "genetrader" / "binance" / "BTC_USDT-5m.feather")
    closes_5m = c.set_index(pd.DatetimeIndex(c["date"]).tz_convert("UTC"))["close"].astype(float)
    w = closes_5m[
        (closes_5m.index >= pd.Timestamp(hist.window_start))
        & (closes_5m.index <= pd.Timestamp(hist.window_end))
    ]
    assert hist.trend["return_pct"] == pytest.approx((w.iloc[-1] / w.iloc[0] - 1) * 100, rel=1e-9)


def test_methods_work_inside_a_running_event_loop(example):
    """A Jupyter cell runs inside the kernel's event loop: the blocking methods still answer."""
    _, _, m = example

    async def cell():
        asyncio.get_running_loop()  # we are inside a running loop, as in Jupyter
        return m.impact("BTC", "sell", size=1, venue="binance")

    res = asyncio.run(cell())
    assert res.side == "sell" and res.fully_filled


def test_bad_input_is_refused_clearly(example, tmp_path):
    _, _, m = example
    with pytest.raises(InvalidInputError, match="not a directory"):
        Monitor.from_recordings(tmp_path / "nope")
    with pytest.raises(InvalidInputError, match="size"):
        m.impact("BTC", "buy", size=-1)
    with pytest.raises(InvalidInputError, match="venues must be a non-empty list"):
        Monitor.live(venues="binance")


def test_closed_monitor_refuses_and_package_import_stays_light(data_dir, tmp_path):
    m = Monitor.from_recordings(data_dir, home=tmp_path)
    m.close()
    m.close()  # twice is harmless
    with pytest.raises(RuntimeError, match="closed"):
        m.book("BTC")
    code = (
        "import sys, market_liquidity_monitor as p; print('market_liquidity_monitor.monitor' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_health_and_alerts_are_the_service_answers(example):
    _, _, m = example
    health = m.health("binance")
    assert health == m.run(lambda s: s.health.venue_health("binance", None))
    books = health.to_pandas()
    assert len(books) == health.books_total and set(books.venue) == {"binance"}
    assert int((books.warning.isna()).sum()) == health.healthy
    rules = m.alerts()
    assert rules.rules_total == len(rules.rules) == 0  # recordings keep rules in memory: none yet

"""``mlm watch``: the table's figures are the analytics functions on the recorded books."""

from __future__ import annotations

import subprocess

import pytest

from market_liquidity_monitor import analytics
from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.market_data import MarketData
from market_liquidity_monitor.watch import fmt_num, fmt_price, market_rows, quality_label

from .helpers import clean_env, mlm

VENUES = ("binance", "okx")  # the hftbacktest Binance book and a cryptofeed OKX capture


@pytest.fixture(scope="module")
def market(data_dir):
    return MarketData.from_recordings(Settings(), data_dir)


def _direct(market, venue, symbol, window_bps, size):
    view = market.view(market.resolve(symbol, venue))
    return {
        "symbol": view.instrument.symbol,
        "top": analytics.top_of_book(view),
        "depth": analytics.depth_within_bps(view, window_bps),
        "imbalance": analytics.imbalance(view, window_bps),
        "buy": analytics.market_impact(view, "buy", size=size),
        "sell": analytics.market_impact(view, "sell", size=size),
        "quality": dict(view.quality),
    }


def test_rows_are_the_analytics_of_each_venue_book(market):
    rows = market_rows(market, "BTC/USDT", VENUES, 25.0, 2.0, None)
    assert [r.venue for r in rows] == list(VENUES)
    for r in rows:
        d = _direct(market, r.venue, "BTC/USDT", 25.0, 2.0)
        assert r.error is None and r.symbol == d["symbol"] == "BTC/USDT"
        assert r.mid_price == d["top"].mid_price and r.spread_bps == d["top"].spread_bps
        assert (r.bid_depth, r.ask_depth) == (d["depth"].bid_size, d["depth"].ask_size)
        assert r.imbalance == d["imbalance"].imbalance
        assert r.buy_slippage_bps == d["buy"].slippage_bps and r.sell_slippage_bps == d["sell"].slippage_bps
        assert r.book_ts == d["top"].book_ts
        assert r.quality == quality_label(d["quality"])
    # Two different books: the rows are not copies of one another.
    assert rows[0].mid_price != rows[1].mid_price


def test_unknown_symbol_on_a_requested_venue_is_a_row_with_the_reason(market):
    (row,) = market_rows(market, "BTC/USDT", ["kraken"], 50.0, None, None)
    assert row.mid_price is None and "Unknown symbol 'BTC/USDT' on kraken" in row.error


def _cells(stdout: str, venue: str) -> list[str]:
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.split("│")]
        if len(cells) > 2 and cells[1] == venue:
            return cells[1:-1]
    raise AssertionError(f"no row for {venue} in:\n{stdout}")


@pytest.mark.slow
def test_watch_once_prints_one_table_with_the_analytics_numbers(data_dir, tmp_path, market):
    args = ["watch", "BTC/USDT", "--data", str(data_dir), "--once", "--window-bps", "25", "--size", "2"]
    for v in VENUES:
        args += ["--venue", v]
    res = subprocess.run(
        mlm(*args), cwd=tmp_path, env=clean_env(tmp_path), capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "BTC/USDT: liquidity by venue (window ±25 bps, reference order 2 BTC)" in res.stdout
    # The headers name the units: mid in the quote currency, depth in the base currency.
    assert "mid (USDT)" in res.stdout
    assert "bid depth ±25 bps (BTC)" in res.stdout and "ask depth ±25 bps (BTC)" in res.stdout
    for venue in VENUES:
        d = _direct(market, venue, "BTC/USDT", 25.0, 2.0)
        cells = _cells(res.stdout, venue)
        assert cells[:2] == [venue, "BTC/USDT"]
        assert cells[2] == fmt_price(d["top"].mid_price)
        assert cells[3] == fmt_num(d["top"].spread_bps, 3)
        assert cells[4] == fmt_num(d["depth"].bid_size, 4)
        assert cells[5] == fmt_num(d["depth"].ask_size, 4)
        assert cells[6] == fmt_num(d["imbalance"].imbalance, 3)
        assert cells[7] == fmt_num(d["buy"].slippage_bps, 2)
        assert cells[8] == fmt_num(d["sell"].slippage_bps, 2)
        assert cells[9] == d["top"].book_ts.replace("T", " ").removesuffix("Z")
        assert cells[11] == quality_label(d["quality"])
    # The printed values are numbers of the right size, not placeholders.
    assert float(_cells(res.stdout, "binance")[2].replace(",", "")) == pytest.approx(
        _direct(market, "binance", "BTC/USDT", 25.0, 2.0)["top"].mid_price, abs=0.01
    )

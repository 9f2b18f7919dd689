"""Venue comparison, routing, backtests, pairs and alerts through the assistant, on the recorded
data, with numbers checked against independent recomputations from the same files and books."""

from __future__ import annotations

import asyncio
import json
import math
import statistics
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from market_liquidity_monitor.agent.assistant import Assistant
from market_liquidity_monitor.agent.evaluation import evaluate, load_queries
from market_liquidity_monitor.cli import app
from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.market_data import MarketData

NEW_QUERIES = Path(__file__).parent / "data" / "queries-new.jsonl"
DEV_QUERIES = Path(__file__).resolve().parents[3] / "shared" / "eval" / "queries-dev.jsonl"


@pytest.fixture(scope="module")
def assistant(data_dir, tmp_path_factory) -> Assistant:
    settings = Settings(data_dir=data_dir, home_dir=tmp_path_factory.mktemp("home"))
    return Assistant(settings, MarketData.from_recordings(settings, data_dir))


def ask(assistant: Assistant, question: str, session_id: str | None = None):
    res = asyncio.run(assistant.ask(question, session_id))
    assert res.grounding["grounded"], (res.answer, res.grounding)
    return res


def _walk(prices: np.ndarray, sizes: np.ndarray, qty: float) -> tuple[float, float]:
    """(filled base, notional) of taking ``qty`` from levels best first, independently of analytics."""
    take = np.minimum(sizes, np.maximum(qty - np.concatenate(([0.0], np.cumsum(sizes)[:-1])), 0.0))
    return float(take.sum()), float(np.dot(take, prices))


def _closes(data_dir: Path, coin: str, tf: str) -> pd.Series:
    df = pd.read_feather(data_dir / "genetrader" / "binance" / f"{coin}_USDT-{tf}.feather")
    return df.set_index(pd.DatetimeIndex(df["date"]).tz_convert("UTC"))["close"].astype(float)


@pytest.mark.parametrize("path", [DEV_QUERIES, NEW_QUERIES], ids=["dev", "new"])
def test_eval_routing_and_grounding_thresholds(assistant, path):
    if not path.exists():
        pytest.skip(f"{path} not found")
    report = asyncio.run(evaluate(assistant, load_queries(path)))
    bad = [i.as_dict() for i in report.items if i.verdict != "ok" or not i.grounded]
    assert report.routing_accuracy >= 0.95, bad
    assert report.grounding_rate == 1.0, bad
    assert len(report.items) >= (40 if path == NEW_QUERIES else 20)


def test_compare_reaches_six_venues_and_costs_match_an_independent_walk(assistant):
    res = ask(assistant, "Which venue is cheapest to buy 5 BTC?")
    (call,) = res.tool_calls
    r = call["result"]
    assert call["tool"] == "compare_venues"
    assert r["venues_compared"] >= 6 and r["cost_includes_taker_fees"] is True
    market = assistant.market
    for row in r["venues"]:
        view = market.view(market.resolve(row["symbol"], row["venue"]))
        filled, notional = _walk(np.asarray(view.ask_prices), np.asarray(view.ask_sizes), 5.0)
        mid = (float(view.bid_prices[0]) + float(view.ask_prices[0])) / 2
        assert row["filled_size"] == pytest.approx(filled, rel=1e-9)
        assert row["book_ts"] == view.book_ts_iso and row["book_ts"] in res.answer
        if row["fully_filled"]:
            vwap = notional / filled
            cost = (vwap * (1 + row["fee_bps"] / 1e4) - mid) / mid * 1e4
            assert row["cost_bps"] == pytest.approx(cost, rel=1e-6, abs=1e-9)
    best = min(
        (x for x in r["venues"] if x["fully_filled"] and not x["book_warning"]), key=lambda x: x["cost_bps"]
    )
    assert r["best_venue"] == best["venue"]
    assert r["books_contemporaneous"] is False and "not contemporaneous" in res.answer
    assert "fee" in res.answer


def test_compare_with_one_named_venue_compares_it_against_the_others(assistant):
    res = ask(assistant, "How does bybit compare for selling 3 BTC?")
    r = res.tool_calls[0]["result"]
    assert r["focus_venue"] == "bybit" and r["venues_compared"] >= 2
    assert "the venue you asked about" in res.answer


def test_route_order_via_cli_json_matches_the_books(data_dir, tmp_path):
    q = "Route a 25 BTC buy across all venues and show me the savings versus sending it to one exchange"
    env = {"MLM_HOME_DIR": str(tmp_path)}
    out = CliRunner().invoke(app, ["ask", q, "--data", str(data_dir), "--json"], env=env)
    assert out.exit_code == 0, out.output
    payload = json.loads(out.stdout.strip().splitlines()[-1])
    (call,) = payload["tool_calls"]
    r = call["result"]
    assert call["tool"] == "route_order" and call["args"]["size"] == 25
    children = r["routed"]["children"]
    assert sum(c["size"] for c in children) == pytest.approx(25.0, rel=1e-9)
    market = MarketData.from_recordings(Settings(), data_dir)
    total = 0.0
    for c in children:
        view = market.view(market.resolve(c["symbol"], c["venue"]))
        filled, notional = _walk(np.asarray(view.ask_prices), np.asarray(view.ask_sizes), c["size"])
        assert filled == pytest.approx(c["size"], rel=1e-9)
        assert c["notional"] == pytest.approx(notional, rel=1e-9)
        total += notional * (1 + c["fee_bps"] / 1e4)
        assert c["book_ts"] in payload["answer"]
    assert r["routed"]["total_quote"] == pytest.approx(total, rel=1e-9)
    for b in r["baselines"]:
        if b["fillable"]:  # size request: savings are the difference of totals
            assert b["savings_quote"] == pytest.approx(b["total_quote"] - total, rel=1e-6, abs=1e-6)
    # the 2021/2022 captures are named as excluded, not silently merged with 2024 books
    assert {"bybit", "okx"} <= set(r["excluded"])
    assert "not contemporaneous" in payload["answer"] and "Excluded" in payload["answer"]


def _scaled_slippage_by_hand(model, frame: pd.DataFrame, first: int, size: float) -> list[float]:
    """Per candle j >= first of ``frame``: the VWAP slippage (bps) of ``size`` at the candle's open on
    ``model``'s book carried by invariance to the trailing 24 h (at most 288 5m candles of ``frame``
    before j): r = (vol / vol_ref)^(2/3) * (qv / qv_ref)^(-1/3), walked level by level in a plain loop."""
    close, vol, opens = frame["close"].tolist(), frame["volume"].tolist(), frame["open"].tolist()
    d, f = model.ask_distance_bps, model.depth_frac
    out = []
    for j in range(first, len(frame)):
        rows = range(max(0, j - 288), j)
        qv = sum(vol[i] * close[i] for i in rows) / len(rows) * 288
        rets = [math.log(close[i] / close[i - 1]) for i in rows if i >= 1]
        sigma = statistics.stdev(rets) * math.sqrt(288) * 1e4
        r = (sigma / model.ref.volatility_24h_bps) ** (2 / 3) * (qv / model.ref.quote_volume_24h) ** (-1 / 3)
        left, area, prev = size * opens[j], 0.0, 0.0
        total = left
        for fk, dk in zip(f, d, strict=True):
            take = min(left, (fk - prev) * model.ref.quote_volume_24h / r)
            area += take * r * dk
            left -= take
            prev = fk
            if left <= 0:
                break
        assert left <= 1e-9 * total, "inside the modelled depth"
        out.append(area / total)
    return out


def test_backtest_counts_intervals_from_the_candle_file(assistant, data_dir):
    # Note for the lead: this tool (tools_trading.backtest_execution) still simulates a separate 500 SOL
    # order at every candle; the single-order answer is analytics.backtest.backtest_order. Only the
    # assertions are rewritten here: every figure against a recomputation from the candle file.
    from market_liquidity_monitor.analytics.backtest import DEFAULT_BOOK_MODEL

    res = ask(assistant, "How would buying 500 SOL have performed over the last 7 days?")
    r = res.tool_calls[0]["result"]
    closes = _closes(data_dir, "SOL", "5m")
    window = closes[closes.index > closes.index[-1] - pd.Timedelta(days=7)]
    assert r["intervals"] == len(window)
    assert r["end"] == closes.index[-1].isoformat().replace("+00:00", "Z")
    assert r["model_calibrated"] is False and "default book model" in res.answer
    # the default is the recorded ETH/USDT model scaled, with its validated error (not an assumption)
    assert r["model_source"] == DEFAULT_BOOK_MODEL.model_source
    assert (
        r["model_source"].startswith("scaled from binance:ETH/USDT") and "mean |error|" in r["model_source"]
    )
    # the tool reads the window plus atr_window + 1 = 15 candles, so the trailing conditions of the
    # first ~270 intervals see less than 24 h (a limitation of the tool's warm-up, mirrored here)
    df = (
        pd.read_feather(data_dir / "genetrader" / "binance" / "SOL_USDT-5m.feather")
        .set_index("date")
        .iloc[-2031:]
    )
    assert df.index[15].isoformat().replace("+00:00", "Z") == r["start"]
    slip = np.array(_scaled_slippage_by_hand(DEFAULT_BOOK_MODEL, df, 15, 500.0))
    opens = df["open"].to_numpy()[15:]
    assert r["avg_slippage_bps"] == pytest.approx(slip.mean(), rel=1e-9)
    assert r["min_slippage_bps"] == pytest.approx(slip.min(), rel=1e-9)
    assert r["max_slippage_bps"] == pytest.approx(slip.max(), rel=1e-9)
    assert r["median_slippage_bps"] == pytest.approx(float(np.median(slip)), rel=1e-9)
    assert r["high_risk_intervals"] == int((slip > 200).sum()) and r["optimal_intervals"] == int(
        (slip < 50).sum()
    )
    assert r["total_cost_quote"] == pytest.approx(float((slip / 1e4 * opens * 500).sum()), rel=1e-9)
    fills = opens * (1 + slip / 1e4)
    assert r["avg_fill_price"] == pytest.approx(float(fills.mean()), rel=1e-12)
    lr = np.diff(np.log(window.to_numpy()))
    assert r["realised_vol_period_pct"] == pytest.approx(np.std(lr, ddof=1) * 100, rel=1e-9)


def _decimal_slippage(prices, sizes, side: str, size: float, mid: Decimal) -> float:
    left, paid = Decimal(repr(size)), Decimal(0)
    for p, q in zip(prices, sizes, strict=True):
        take = min(left, Decimal(repr(float(q))))
        paid += take * Decimal(repr(float(p)))
        left -= take
        if left == 0:
            break
    assert left == 0
    vwap = paid / Decimal(repr(size))
    return float((1 if side == "buy" else -1) * (vwap - mid) / mid * 10_000)


def test_backtest_on_btc_calibrates_from_the_real_book_and_validates(assistant, data_dir):
    res = ask(assistant, "Backtest selling 10 BTC over the past 3 days")
    r = res.tool_calls[0]["result"]
    assert r["model_calibrated"] is True and r["calibration_book"]["book_ts"] in res.answer
    assert "in-sample" in res.answer
    # the validation's real slippage is the calibration book's: recompute it by a Decimal walk
    market = MarketData.from_recordings(Settings(), data_dir)
    view = market.view(market.resolve("BTC/USDT", "binance"))
    assert view.book_ts_iso == r["calibration_book"]["book_ts"]
    mid = (Decimal(repr(float(view.bid_prices[0]))) + Decimal(repr(float(view.ask_prices[0])))) / 2
    val = r["model_validation"]
    assert {p["size"] for p in val["points"]} >= {10.0} and len(val["points"]) == 8
    errs = []
    for p in val["points"]:
        prices, sizes = (
            (view.ask_prices, view.ask_sizes) if p["side"] == "buy" else (view.bid_prices, view.bid_sizes)
        )
        real = _decimal_slippage(prices, sizes, p["side"], p["size"], mid)
        assert p["real_slippage_bps_mean"] == pytest.approx(real, rel=1e-9, abs=1e-9)
        errs.append(abs(p["model_slippage_bps"] - real))
        assert p["abs_error_bps_mean"] == pytest.approx(errs[-1], rel=1e-9, abs=1e-9)
    assert val["mean_abs_error_bps"] == pytest.approx(sum(errs) / len(errs), rel=1e-9)
    # in sample on its own book the piecewise-linear profile stays within 0.25 bps at every size
    assert max(errs) <= 0.25


def test_pairs_hedge_ratio_matches_numpy_least_squares(assistant, data_dir):
    res = ask(assistant, "Hedge ratio and z-score for ETH against BTC on 1h candles")
    r = res.tool_calls[0]["result"]
    a, b = _closes(data_dir, "ETH", "1h"), _closes(data_dir, "BTC", "1h")
    df = pd.concat({"a": a, "b": b}, axis=1, join="inner")
    end = df.index[-1]
    df = df[df.index > end - pd.Timedelta(days=r["lookback_days"])]
    slope, _ = np.polyfit(np.log(df["b"]), np.log(df["a"]), 1)
    assert r["n_obs"] == len(df)
    assert r["hedge_ratio_ols"] == pytest.approx(slope, rel=1e-6)
    ra, rb = np.diff(np.log(df["a"]))[-48:], np.diff(np.log(df["b"]))[-48:]
    assert r["return_corr_last"] == pytest.approx(np.corrcoef(ra, rb)[0, 1], rel=1e-6)
    assert r["trade_cost"]["available"] is True and r["trade_cost"]["cost_includes_taker_fees"] is True


def test_bad_inputs_get_clear_answers(assistant):
    short = ask(assistant, "pairs stats for LTC and BTC over the last 1 hour")
    assert "at least 50" in short.answer and "overlapping" in short.answer
    none = ask(assistant, "Compare SOL liquidity on Binance and Kraken for a 1000 SOL buy order")
    assert "BTC" in none.answer and "several venues" in none.answer  # says what exists instead
    zero = ask(assistant, "route 0 ETH")
    assert "positive" in zero.answer
    unknown = ask(assistant, "backtest buying 10 BTC over the last 3 days on gemini")
    assert "No candles stored" in unknown.answer and unknown.tool_calls[0]["args"]["venue"] == "gemini"


def test_follow_ups_keep_the_capability(assistant):
    first = ask(assistant, "Smart-route a sell of 40 ETH")
    follow = ask(assistant, "what about 10 BTC?", first.session_id)
    call = follow.tool_calls[0]
    assert call["tool"] == "route_order" and call["args"]["size"] == 10 and call["args"]["symbol"] == "BTC"
    again = ask(assistant, "and for ETH?", follow.session_id)
    assert again.tool_calls[0]["args"]["symbol"] == "ETH"


def test_alerts_create_list_and_recent(assistant):
    created = ask(assistant, "Alert me when the BTC spread on binance goes above 5 bps")
    rule = created.tool_calls[0]["result"]["rule"]
    assert (rule["symbol"], rule["venue"], rule["metric"], rule["threshold"]) == (
        "BTC/USDT",
        "binance",
        "spread_bps",
        5.0,
    )
    listed = ask(assistant, "show me my alerts", created.session_id)
    assert listed.tool_calls[0]["tool"] == "list_alerts"
    assert any(r["id"] == rule["id"] for r in listed.tool_calls[0]["result"]["rules"])
    recent = ask(assistant, "Any liquidity alerts or anomalies on BTC?")
    r = recent.tool_calls[0]["result"]
    assert recent.tool_calls[0]["tool"] == "liquidity_alerts" and r["books_observed"] >= 2
    stale = [b for b in r["books"] if b["quality"]["stale"]]
    assert r["book_anomalies"] >= len(stale)

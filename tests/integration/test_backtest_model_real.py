"""Book models on the recorded Binance spot books (../shared/data/hftbacktest, BTC/USDT and ETH/USDT,
2024-08-08 23:54 -> 2024-08-09 00:05 UTC) and the genetrader 5m candles, against independent references.

- The real slippage behind every validation figure is recomputed by a Decimal walk of each book.
- The error bounds below are what docs/analytics.md states; ``test_bounds_reject_2x_thinner_and_thicker``
  shows that a model 2x thinner or thicker (depth x 0.5 / x 2) breaks them, so a miscalibrated model
  fails this file.
- The 500 ETH buy (the audit's case): the final recorded ETH/USDT book gives 3.94 bps; the model's
  prediction must be within ``ETH_500_TOL_BPS``.
"""

from __future__ import annotations

import gzip
import itertools
from decimal import Decimal
from pathlib import Path

import orjson
import pandas as pd
import pytest

from market_liquidity_monitor.analytics.backtest import DEFAULT_BOOK_MODEL
from market_liquidity_monitor.analytics.calibration import (
    BookModelSet,
    DepthModel,
    build_model_set,
    conditions_at,
    depth_slippage_bps,
    scale_factors,
    validate_depth_model,
)
from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.ingest.book_samples import recorded_model_set, sample_recorded_books
from market_liquidity_monitor.market_data import MarketData

SYMBOLS = ("BTC/USDT", "ETH/USDT")
NOTIONALS = (10_000.0, 100_000.0, 1_000_000.0, 5_000_000.0)
# The stated bounds (docs/analytics.md, "Validation"): mean |error| over the 8 buckets (4 notionals x 2 sides)
OOS_MEAN_BOUND_BPS = 1.0  # per asset, out of sample
OOS_BUCKET_BOUND_BPS = 2.0  # every bucket's mean |error|, out of sample
CROSS_MEAN_BOUND_BPS = {"ETH/USDT": 1.5, "BTC/USDT": 1.0}  # target predicted from the other asset
ETH_500_TOL_BPS = 1.0


def _candles(data_dir: Path, symbol: str) -> pd.DataFrame:
    return pd.read_feather(
        data_dir / "genetrader" / "binance" / f"{symbol.split('/')[0]}_USDT-5m.feather"
    ).set_index("date")


@pytest.fixture(scope="module")
def books(data_dir):
    got = sample_recorded_books(data_dir, every_s=2.0)
    out = {inst.symbol: views for inst, views in got.items()}
    assert sorted(out) == list(SYMBOLS)
    return out


@pytest.fixture(scope="module")
def candles(data_dir):
    return {s: _candles(data_dir, s) for s in SYMBOLS}


@pytest.fixture(scope="module")
def ms(books, candles) -> BookModelSet:
    return build_model_set(books, candles, calibration_fraction=0.5, every_s=2.0)


def _halves(views):
    cut = len(views) // 2
    return views[:cut], views[cut:]


def _dec(x: float) -> Decimal:
    return Decimal(repr(float(x)))


def decimal_slippage_bps(view, side: str, notional: float) -> float:
    """VWAP slippage vs mid of size = notional / mid, walking the view's levels in Decimal."""
    mid = (_dec(view.bid_prices[0]) + _dec(view.ask_prices[0])) / 2
    size = _dec(notional) / mid
    prices, sizes = (view.ask_prices, view.ask_sizes) if side == "buy" else (view.bid_prices, view.bid_sizes)
    left, paid = size, Decimal(0)
    for p, q in zip(prices, sizes, strict=True):
        take = min(left, _dec(q))
        paid += take * _dec(p)
        left -= take
        if left == 0:
            break
    assert left == 0, "the book cannot fill the order"
    vwap = paid / size
    sign = 1 if side == "buy" else -1
    return float(sign * (vwap - mid) / mid * 10_000)


@pytest.fixture(scope="module")
def real(books):
    """(symbol, part, side, notional) -> Decimal-walk slippage of every view of that part."""
    out = {}
    for sym, views in books.items():
        for part, vs in zip(("cal", "val"), _halves(views), strict=True):
            for side in ("buy", "sell"):
                for n in NOTIONALS:
                    out[sym, part, side, n] = [decimal_slippage_bps(v, side, n) for v in vs]
    return out


def _check_against(validation, reals: dict) -> None:
    for p in validation.points:
        r = reals[p.side.value, p.notional]
        assert p.n_books == len(r)
        assert p.real_slippage_bps_mean == pytest.approx(sum(r) / len(r), rel=1e-9, abs=1e-9)
        assert (p.real_slippage_bps_min, p.real_slippage_bps_max) == pytest.approx(
            (min(r), max(r)), rel=1e-9, abs=1e-9
        )
        errs = [abs(p.model_slippage_bps - x) for x in r]
        assert p.abs_error_bps_mean == pytest.approx(sum(errs) / len(errs), rel=1e-9, abs=1e-9)
        assert p.abs_error_bps_max == pytest.approx(max(errs), rel=1e-9, abs=1e-9)
    means = [p.abs_error_bps_mean for p in validation.points]
    assert validation.mean_abs_error_bps == pytest.approx(sum(means) / len(means), rel=1e-9)


def test_sampling_after_the_warm_up(books):
    for views in books.values():
        # a view's receive time is its book's last update, at or just before the 2 s sampling point
        gaps = sorted(b.ts_recv_ns - a.ts_recv_ns for a, b in itertools.pairwise(views))
        assert len(views) > 200 and gaps[0] >= 0 and 1.9e9 <= gaps[len(gaps) // 2] <= 2.1e9
        assert all(v.quality["synced"] for v in views)
    # the first sample is >= 240 s after the REST snapshot (23:54:13/14 UTC)
    assert min(v[0].book_ts_iso for v in books.values()) >= "2024-08-08T23:58:13"


def test_validation_table_matches_a_decimal_walk_of_every_book(ms, real):
    for v in ms.in_sample + ms.out_of_sample + ms.cross:
        sym = v.target.split(":", 1)[1]
        part = "cal" if v.label == "in-sample" else "val"
        _check_against(
            v, {(side, n): real[sym, part, side, n] for side in ("buy", "sell") for n in NOTIONALS}
        )
    print("\n" + _table(ms))


def _table(ms: BookModelSet) -> str:
    rows = [
        "validation | target | side | notional | model bps | real mean [min, max] | mean |err| | max |err|"
    ]
    for v in ms.in_sample + ms.out_of_sample + ms.cross:
        for p in v.points:
            rows.append(
                f"{v.label} | {v.target} | {p.side.value} | {p.notional:,.0f} | {p.model_slippage_bps:.2f} | "
                f"{p.real_slippage_bps_mean:.2f} [{p.real_slippage_bps_min:.2f}, {p.real_slippage_bps_max:.2f}] | "
                f"{p.abs_error_bps_mean:.2f} | {p.abs_error_bps_max:.2f}"
            )
        rows.append(
            f"{v.label} | {v.target} | all | | | | {v.mean_abs_error_bps:.2f} | {v.max_abs_error_bps:.2f}"
        )
    return "\n".join(rows)


def _violations(oos_by_symbol: dict, cross_by_target: dict) -> list[str]:
    bad = []
    for sym, v in oos_by_symbol.items():
        if v.mean_abs_error_bps > OOS_MEAN_BOUND_BPS:
            bad.append(f"{sym} out-of-sample mean {v.mean_abs_error_bps:.2f}")
        worst = max(p.abs_error_bps_mean for p in v.points)
        if worst > OOS_BUCKET_BOUND_BPS:
            bad.append(f"{sym} out-of-sample bucket {worst:.2f}")
    for sym, v in cross_by_target.items():
        if v.mean_abs_error_bps > CROSS_MEAN_BOUND_BPS[sym]:
            bad.append(f"{sym} cross mean {v.mean_abs_error_bps:.2f}")
    return bad


def test_out_of_sample_and_cross_asset_errors_within_the_stated_bounds(ms):
    oos = {v.target.split(":")[1]: v for v in ms.out_of_sample}
    cross = {v.target.split(":")[1]: v for v in ms.cross}
    assert set(cross) == set(SYMBOLS)
    assert cross["ETH/USDT"].label == "ETH/USDT predicted from BTC/USDT (out of sample)"
    assert _violations(oos, cross) == []
    for m in ms.models:
        assert m.error is oos[m.symbol] or m.error == oos[m.symbol]
        assert "validated out-of-sample" in m.model_source


def _variant(m: DepthModel, k: float) -> DepthModel:
    return m.model_copy(update={"depth_frac": tuple(x * k for x in m.depth_frac)})


@pytest.mark.parametrize("k", [0.5, 2.0])
def test_bounds_reject_2x_thinner_and_thicker(ms, books, candles, k):
    """The same validation with every model's depth multiplied by ``k`` breaks the bounds."""
    oos, cross = {}, {}
    for m in ms.models:
        mk = _variant(m, k)
        for sym in SYMBOLS:
            _, val = _halves(books[sym])
            c = conditions_at(candles[sym], pd.Timestamp(val[0].book_ts_ns, unit="ns", tz="UTC"))
            v = validate_depth_model(mk, val, c, NOTIONALS)
            (oos if sym == m.symbol else cross)[sym] = v
    bad = _violations(oos, cross)
    assert any(b.startswith("BTC/USDT") for b in bad) and any(b.startswith("ETH/USDT") for b in bad), bad
    assert any("cross" in b for b in bad), bad


@pytest.fixture(scope="module")
def final_eth(data_dir):
    md = MarketData.from_recordings(Settings(), data_dir)
    return md.view(md.resolve("ETH/USDT", "binance"))


def _predict_500_eth(model: DepthModel, view, candles) -> float:
    c = conditions_at(candles["ETH/USDT"], pd.Timestamp(view.book_ts_ns, unit="ns", tz="UTC"))
    a, b = scale_factors(model.ref, c.quote_volume_24h, c.volatility_24h_bps, model.scaling)
    mid = float((_dec(view.bid_prices[0]) + _dec(view.ask_prices[0])) / 2)
    slip, extra = depth_slippage_bps(model, "buy", 500 * mid, a, b)
    assert not bool(extra[()])
    return float(slip[()])


def test_500_eth_buy_within_tolerance_of_the_real_final_book(ms, final_eth, candles):
    mid = float((_dec(final_eth.bid_prices[0]) + _dec(final_eth.ask_prices[0])) / 2)
    real = decimal_slippage_bps(final_eth, "buy", 500 * mid)
    assert real == pytest.approx(3.936, abs=0.001)
    own = _predict_500_eth(ms.calibrated("ETH/USDT"), final_eth, candles)
    from_btc = _predict_500_eth(ms.calibrated("BTC/USDT"), final_eth, candles)
    print(f"\n500 ETH buy: real {real:.3f} bps, ETH model {own:.3f}, scaled from BTC {from_btc:.3f}")
    assert abs(own - real) <= ETH_500_TOL_BPS and abs(from_btc - real) <= ETH_500_TOL_BPS
    for k in (0.5, 2.0):  # a 2x thinner or thicker model is outside the tolerance
        for sym in SYMBOLS:
            assert (
                abs(_predict_500_eth(_variant(ms.calibrated(sym), k), final_eth, candles) - real)
                > ETH_500_TOL_BPS
            )


def test_unrecorded_assets_are_scaled_from_eth_with_the_error_that_applies(ms, data_dir):
    for coin in ("SOL", "XRP", "LTC", "DOGE"):
        c = _candles(data_dir, f"{coin}/USDT")
        cond = conditions_at(c, c.index[-1], f"{coin}/USDT 5m")
        m = ms.model_for(f"{coin}/USDT", cond)
        assert m.scaled_from == "binance:ETH/USDT" and m.applies_to == f"{coin}/USDT"
        assert m.error.label == "BTC/USDT predicted from ETH/USDT (out of sample)"
        assert m.model_source.startswith("scaled from binance:ETH/USDT")


def test_frozen_default_is_the_recorded_calibration(data_dir, ms):
    fresh = recorded_model_set(data_dir)  # the loader's path (recorded_candles), = the fixture's data
    for got in (fresh, ms):
        eth = got.calibrated("ETH/USDT")
        d = DEFAULT_BOOK_MODEL
        assert (d.venue, d.symbol, d.n_books, d.books_start, d.books_end) == (
            eth.venue, eth.symbol, eth.n_books, eth.books_start, eth.books_end
        )  # fmt: skip
        for f in ("depth_frac", "bid_distance_bps", "ask_distance_bps"):
            assert getattr(d, f) == pytest.approx(getattr(eth, f), rel=1e-12)
        assert d.ref.quote_volume_24h == pytest.approx(eth.ref.quote_volume_24h, rel=1e-12)
        assert d.ref.volatility_24h_bps == pytest.approx(eth.ref.volatility_24h_bps, rel=1e-12)
        cross = next(v for v in got.cross if v.calibrated_on == "binance:ETH/USDT")
        assert d.error.label == cross.label
        assert d.error.mean_abs_error_bps == pytest.approx(cross.mean_abs_error_bps, rel=1e-9)
        assert d.error.max_abs_error_bps == pytest.approx(cross.max_abs_error_bps, rel=1e-9)
    assert (
        DEFAULT_BOOK_MODEL.scaled_from == "binance:ETH/USDT"
        and "calibrated" not in DEFAULT_BOOK_MODEL.model_source[:20]
    )


def _diff_only_depth(path_days: list[Path], checkpoints_ns: list[int], mids: list[float], bps: float):
    """Depth (base units, both sides) within ``bps`` of each checkpoint's mid of a book built from
    the diff-depth updates alone (no REST snapshot), parsed straight from the recording."""
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    out, k = [], 0
    for path in path_days:
        with gzip.open(path, "rb") as fh:
            for line in fh:
                sp = line.find(b" ")
                ts = int(line[:sp])
                while k < len(checkpoints_ns) and ts > checkpoints_ns[k]:
                    m = mids[k]
                    out.append(
                        sum(q for p, q in bids.items() if m * (1 - bps / 1e4) <= p < m)
                        + sum(q for p, q in asks.items() if m < p <= m * (1 + bps / 1e4))
                    )
                    k += 1
                msg = orjson.loads(line[sp + 1 :])
                data = msg.get("data", msg)
                if data.get("e") != "depthUpdate":
                    continue
                for key, book in (("b", bids), ("a", asks)):
                    for p, q in data[key]:
                        if float(q) == 0:
                            book.pop(float(p), None)
                        else:
                            book[float(p)] = float(q)
    return out


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_books_are_complete_within_50_bps_after_the_warm_up(data_dir, books, symbol):
    """The warm-up's justification: after BOOK_WARMUP_S (240 s) a book built from the diffs alone holds
    what the snapshot-based book holds within 30 bps (>= 99 %) and 50 bps (>= 95 %), so levels
    beyond the snapshot's range (BTC bids: ~33 bps) are not missing."""
    views = books[symbol][:: len(books[symbol]) // 5]
    name = symbol.split("/")[0].lower() + "usdt"
    files = sorted((data_dir / "hftbacktest" / "spot").glob(f"{name}_*.gz"))
    mids = [(v.bid_prices[0] + v.ask_prices[0]) / 2 for v in views]
    for bps, floor in ((30, 0.99), (50, 0.95)):
        diff_only = _diff_only_depth(files, [v.ts_recv_ns for v in views], mids, bps)
        for v, m, d in zip(views, mids, diff_only, strict=True):
            full = float(v.bid_sizes[v.bid_prices >= m * (1 - bps / 1e4)].sum()) + float(
                v.ask_sizes[v.ask_prices <= m * (1 + bps / 1e4)].sum()
            )
            assert d / full >= floor, f"{symbol} {v.book_ts_iso}: {d / full:.3f} within {bps} bps"

"""Execution backtest over candle history against a book model calibrated from real recorded books.

Candle history has no order book, so each candle gets a *modelled* book:

1. ``calibrate_book_model(views, ref_volume, ref_atr_bps)``: from one or more real ``BookView`` s of
   the asset, the cumulative resting size (base units) within ``g`` bps of mid, per side, on a bps
   grid (``DEFAULT_GRID_BPS``), averaged over the views and divided by ``ref_volume`` (the candle
   volume, base units, of the period the books were recorded in); also the mean half-spread in bps.
   Between grid points the profile is linear (piecewise-linear cumulative depth).
2. Per candle ``t``: depth is scaled by ``volume_t / ref_volume`` and distances are widened by
   ``w_t = clip(atr_bps_t / ref_atr_bps, 0.25, 20)``, i.e. ``D_t(g) = (volume_t / ref_volume) *
   ref_volume * frac(g / w_t)``. ``atr_bps`` is Wilder's average true range (J. W. Wilder, "New
   Concepts in Technical Trading Systems", 1978: ``TR = max(h - l, |h - c_prev|, |l - c_prev|)``,
   smoothed with ``alpha = 1/n``) divided by the close, in bps.
3. The order of ``size`` base units walks ``D_t``: the distance reached by the ``q``-th unit is
   ``g(q) = D_t^{-1}(q)`` and the VWAP slippage vs mid is ``(1/Q) ∫_0^Q g(q) dq`` (trapezoid on a
   fine grid). Beyond the calibrated grid the last segment's slope is extended
   (``extrapolated_intervals`` counts candles where that happened). The fill price is the candle
   close (taken as mid) moved by the slippage.

``DEFAULT_BOOK_MODEL`` (used only when no real book of the asset exists) is an assumption, not a
measurement: half-spread 2 bps and 0.05 % of a candle's volume per bp of distance on each side,
referenced to 100 bps ATR; results from it say so in ``model_source``.

Per interval (``backtest_execution(..., series=True)``): ``BacktestSeries`` holds each candle's
time, slippage, fill price and risk flags (high risk ``> HIGH_RISK_BPS``, optimal ``< OPTIMAL_BPS``),
and ``risk_periods`` the contiguous runs of high-risk intervals (start, end, max slippage).
``downsample_series`` caps the series for display: equal-count buckets of consecutive intervals,
each represented by its interval of maximum slippage (so peaks and risk flags survive).

``validate_book_model`` measures the model against real books: slippage (bps vs mid) of the model at
its calibration conditions vs ``market_impact`` on each real book, for the same sizes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import numpy as np
import pandas as pd

from market_liquidity_monitor.analytics.liquidity import (
    Result,
    check_number,
    exact_mid,
    impact_curve,
    one_amount,
    side_sign,
)
from market_liquidity_monitor.book.view import BookView
from market_liquidity_monitor.domain.errors import InvalidInputError
from market_liquidity_monitor.domain.instrument import Side

__all__ = [
    "DEFAULT_BOOK_MODEL",
    "DEFAULT_GRID_BPS",
    "HIGH_RISK_BPS",
    "OPTIMAL_BPS",
    "BacktestResult",
    "BacktestSeries",
    "BookModel",
    "BookModelValidation",
    "RiskPeriod",
    "ValidationPoint",
    "atr_bps",
    "backtest_execution",
    "calibrate_book_model",
    "downsample_series",
    "model_slippage_bps",
    "validate_book_model",
]

BPS = 1e4
DEFAULT_GRID_BPS: tuple[float, ...] = (0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 50, 75, 100, 150, 200, 300, 500)
HIGH_RISK_BPS = 200.0
OPTIMAL_BPS = 50.0
_WIDEN_CLIP = (0.25, 20.0)
_Q_STEPS = 400


class BookModel(Result):
    """Cumulative depth profile (fraction of ``ref_volume``) per side on a bps-from-mid grid."""

    grid_bps: tuple[float, ...]
    bid_depth_frac: tuple[float, ...]  # cumulative bid size within grid_bps[i] of mid / ref_volume
    ask_depth_frac: tuple[float, ...]
    half_spread_bps: float
    ref_volume: float  # base units per candle at calibration
    ref_atr_bps: float
    model_source: str  # e.g. "calibrated from 12 binance:BTC/USDT books" or "default (assumed)"
    n_books: int


DEFAULT_BOOK_MODEL = BookModel(
    grid_bps=DEFAULT_GRID_BPS,
    bid_depth_frac=tuple(5e-4 * g for g in DEFAULT_GRID_BPS),
    ask_depth_frac=tuple(5e-4 * g for g in DEFAULT_GRID_BPS),
    half_spread_bps=2.0,
    ref_volume=1.0,
    ref_atr_bps=100.0,
    model_source="default (assumed, not measured): 2 bps half-spread, 0.05% of candle volume per bp",
    n_books=0,
)


class BacktestSeries(Result):
    """Per-interval values of a backtest, columnar, in time order (one entry per simulated candle,
    or per bucket's worst candle after ``downsample_series``)."""

    ts: tuple[str, ...]  # ISO 8601 UTC of the candle
    slippage_bps: tuple[float, ...]  # VWAP slippage vs mid (the close) of the order on the model book
    fill_price: tuple[float, ...]  # quote per base unit
    high_risk: tuple[bool, ...]  # slippage > HIGH_RISK_BPS
    optimal: tuple[bool, ...]  # slippage < OPTIMAL_BPS
    bucket_intervals: int = 1  # consecutive intervals each point stands for (1 = not downsampled)

    def records(self) -> list[dict]:
        """The series as one dict per point (``ts``, ``slippage_bps``, ``fill_price``, flags)."""
        return [
            {"ts": t, "slippage_bps": s, "fill_price": f, "high_risk": h, "optimal": o}
            for t, s, f, h, o in zip(
                self.ts, self.slippage_bps, self.fill_price, self.high_risk, self.optimal, strict=True
            )
        ]


class RiskPeriod(Result):
    """A contiguous run of high-risk intervals (slippage > HIGH_RISK_BPS) of the full series."""

    start: str  # ISO 8601 UTC of the run's first candle
    end: str  # ISO 8601 UTC of the run's last candle
    intervals: int
    max_slippage_bps: float
    worst_interval: str


class BacktestResult(Result):
    """The order simulated at each candle of the window."""

    side: Side
    size: float | None
    notional: float | None  # quote units per interval (size = notional / close) if given
    start: str  # ISO 8601 UTC of the first candle used
    end: str
    lookback_s: float | None
    intervals: int
    model_source: str
    avg_slippage_bps: float
    max_slippage_bps: float
    min_slippage_bps: float
    median_slippage_bps: float
    high_risk_intervals: int  # slippage > HIGH_RISK_BPS
    optimal_intervals: int  # slippage < OPTIMAL_BPS
    high_risk_threshold_bps: float
    optimal_threshold_bps: float
    extrapolated_intervals: int  # the order walked past the calibrated grid
    avg_fill_price: float
    total_size: float
    total_notional: float  # sum of fill price * size
    total_cost_quote: float  # sum of slippage / 1e4 * close * size
    spread_bps_percentiles: dict[str, float]  # modelled spread, "p5".."p95"
    atr_bps_percentiles: dict[str, float]
    slippage_bps_percentiles: dict[str, float]
    worst_interval: str  # ISO time of the max slippage
    # per interval, only with backtest_execution(..., series=True); risk_periods from the full series
    series: BacktestSeries | None = None
    risk_periods: tuple[RiskPeriod, ...] | None = None


class ValidationPoint(Result):
    size: float
    side: Side
    model_slippage_bps: float
    real_slippage_bps_mean: float
    error_bps_mean: float  # model - real, averaged over books
    abs_error_bps_mean: float
    abs_error_bps_max: float


class BookModelValidation(Result):
    """Model vs real books for the same sizes (slippage vs mid, bps)."""

    model_source: str
    n_books: int
    points: tuple[ValidationPoint, ...]
    mean_abs_error_bps: float
    max_abs_error_bps: float


# ----------------------------------------------------------------------------- calibration


def _check_grid(grid: Sequence[float]) -> np.ndarray:
    g = np.asarray([check_number("each grid_bps", x, unit="bps") for x in grid], dtype=float)
    if g.size < 2 or np.any(np.diff(g) <= 0):
        raise InvalidInputError(
            f"grid_bps must hold >= 2 strictly increasing distances in bps; got {list(grid)}"
        )
    return g


def calibrate_book_model(
    views: Sequence[BookView],
    ref_volume: float,
    ref_atr_bps: float,
    grid_bps: Sequence[float] = DEFAULT_GRID_BPS,
) -> BookModel:
    """Fit the cumulative depth profile of ``views`` (see the module docstring).

    ``ref_volume``: candle volume (base units) of the calibration period; ``ref_atr_bps``: the ATR
    in bps at that time. Raises ``InvalidInputError`` for no views, a bad grid or reference, and
    ``BookNotReadyError`` if a view lacks a side.
    """
    if not views:
        raise InvalidInputError("calibrate_book_model needs at least one BookView")
    ref_volume = check_number("ref_volume", ref_volume, unit="base units per candle")
    ref_atr = check_number("ref_atr_bps", ref_atr_bps, unit="bps")
    g = _check_grid(grid_bps)
    bids, asks, half = [], [], []
    for v in views:
        mid, _ = exact_mid(v)
        bd = (mid - v.bid_prices) / mid * BPS  # ascending distances
        ad = (v.ask_prices - mid) / mid * BPS
        cb, ca = np.cumsum(v.bid_sizes), np.cumsum(v.ask_sizes)
        # a level exactly on a grid distance counts as inside (1e-9 relative absorbs float noise)
        kb = np.searchsorted(bd, g * (1 + 1e-9), side="right")
        ka = np.searchsorted(ad, g * (1 + 1e-9), side="right")
        bids.append(np.where(kb > 0, cb[np.maximum(kb - 1, 0)], 0.0))
        asks.append(np.where(ka > 0, ca[np.maximum(ka - 1, 0)], 0.0))
        half.append((float(v.ask_prices[0]) - float(v.bid_prices[0])) / 2 / mid * BPS)
    names = sorted({str(v.instrument) for v in views})
    return BookModel(
        grid_bps=tuple(float(x) for x in g),
        bid_depth_frac=tuple(float(x) for x in np.mean(bids, axis=0) / ref_volume),
        ask_depth_frac=tuple(float(x) for x in np.mean(asks, axis=0) / ref_volume),
        half_spread_bps=float(np.mean(half)),
        ref_volume=ref_volume,
        ref_atr_bps=ref_atr,
        model_source=f"calibrated from {len(views)} book(s) of {', '.join(names)}",
        n_books=len(views),
    )


def _profile(model: BookModel, side: Side) -> tuple[np.ndarray, np.ndarray]:
    """``(distance_bps, cum_frac)`` knots starting at the half-spread with depth 0."""
    frac = np.asarray(model.ask_depth_frac if side is Side.BUY else model.bid_depth_frac, dtype=float)
    g = np.asarray(model.grid_bps, dtype=float)
    keep = g > model.half_spread_bps
    d = np.concatenate(([model.half_spread_bps], g[keep]))
    f = np.concatenate(([0.0], frac[keep]))
    f = np.maximum.accumulate(f)
    return d, f


def model_slippage_bps(
    model: BookModel,
    side: Side | str,
    sizes: np.ndarray | Sequence[float],
    volume_scale: np.ndarray | float = 1.0,
    widen: np.ndarray | float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """VWAP slippage vs mid (bps) of ``sizes`` (base units) on the model book, and an "extrapolated" flag.

    Depth is ``model.ref_volume * volume_scale * frac``, distances multiplied by ``widen``;
    arrays broadcast. Beyond the last knot the last segment's density is extended.
    """
    side = Side.parse(side)
    d, f = _profile(model, side)
    sizes, scale, wid = np.broadcast_arrays(
        np.asarray(sizes, dtype=float), np.asarray(volume_scale, dtype=float), np.asarray(widen, dtype=float)
    )
    depth = model.ref_volume * f  # base units at scale 1
    # extend past the last knot with the last positive segment's slope (bps per base unit)
    nz = np.nonzero(np.diff(depth) > 0)[0]
    slope = (d[nz[-1] + 1] - d[nz[-1]]) / (depth[nz[-1] + 1] - depth[nz[-1]]) if nz.size else np.inf
    # q in units of the scale-1 book: q_eff = size / scale
    q_eff = sizes / np.maximum(scale, 1e-300)
    steps = np.linspace(0.0, 1.0, _Q_STEPS + 1)
    qs = q_eff[..., None] * steps  # (..., steps)
    depth_u, idx = np.unique(depth, return_index=True)
    g = np.interp(qs, depth_u, d[idx])
    beyond = qs > depth[-1]
    g = np.where(beyond, d[-1] + (qs - depth[-1]) * slope, g)
    avg = np.trapezoid(g, steps, axis=-1) if hasattr(np, "trapezoid") else np.trapz(g, steps, axis=-1)
    return avg * wid, q_eff > depth[-1]


# ---------------------------------------------------------------------------------- candles


def atr_bps(candles: pd.DataFrame, window: int = 14) -> pd.Series:
    """Wilder's ATR over ``window`` candles as bps of the close (see module docstring)."""
    h, low, c = candles["high"].astype(float), candles["low"].astype(float), candles["close"].astype(float)
    prev = c.shift(1)
    tr = pd.concat([h - low, (h - prev).abs(), (low - prev).abs()], axis=1).max(axis=1)
    return tr.ewm(alpha=1.0 / window, adjust=False).mean() / c * BPS


def _pct(x: np.ndarray) -> dict[str, float]:
    return {f"p{p}": float(np.percentile(x, p)) for p in (5, 25, 50, 75, 95)}


def _index_ts(candles: pd.DataFrame) -> pd.DatetimeIndex:
    if isinstance(candles.index, pd.DatetimeIndex):
        idx = candles.index
    elif "date" in candles.columns:
        idx = pd.DatetimeIndex(candles["date"])
    else:
        raise InvalidInputError("candles need a DatetimeIndex or a 'date' column (UTC timestamps)")
    return idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")


def backtest_execution(
    candles: pd.DataFrame,
    model: BookModel,
    side: Side | str,
    size: float | None = None,
    notional: float | None = None,
    lookback: timedelta | pd.Timedelta | None = None,
    atr_window: int = 14,
    series: bool = False,
) -> BacktestResult:
    """Simulate a taker order of ``size`` (base) or ``notional`` (quote, converted at each close) at
    every candle of the last ``lookback`` of ``candles`` (relative to the data's own last timestamp;
    None = all), on the model book of each candle (module docstring).

    ``candles``: columns open/high/low/close/volume, a DatetimeIndex or a ``date`` column.
    Raises ``InvalidInputError`` for missing columns, a bad amount, fewer than ``atr_window + 1``
    candles, or a lookback that leaves no candle after the ATR warm-up.

    ``series=True`` adds the per-interval ``series`` (every candle, not downsampled) and the
    ``risk_periods``; off by default to keep the result small (e.g. for the assistant's tools).
    """
    side = Side.parse(side)
    amount, _ = one_amount(size, notional)
    missing = [c for c in ("open", "high", "low", "close", "volume") if c not in candles.columns]
    if missing:
        raise InvalidInputError(f"candles lack columns {missing}; need open, high, low, close, volume")
    ts = _index_ts(candles)
    df = candles.set_axis(ts, axis=0)[["open", "high", "low", "close", "volume"]].astype(float)
    if len(df) < atr_window + 1:
        raise InvalidInputError(f"{len(df)} candles; at least atr_window + 1 = {atr_window + 1} are needed")
    atr = atr_bps(df, atr_window)
    df = df.assign(atr_bps=atr).iloc[atr_window:]  # drop the ATR warm-up
    if lookback is not None:
        lb = pd.Timedelta(lookback)
        df = df[df.index > df.index[-1] - lb] if len(df) else df
    df = df[df["volume"] > 0]
    if df.empty:
        raise InvalidInputError("no candle with volume > 0 in the window after the ATR warm-up")
    close = df["close"].to_numpy()
    sizes = np.full(len(df), amount) if size is not None else amount / close
    scale = df["volume"].to_numpy() / model.ref_volume
    widen = np.clip(df["atr_bps"].to_numpy() / model.ref_atr_bps, *_WIDEN_CLIP)
    slip, extra = model_slippage_bps(model, side, sizes, scale, widen)
    s = side_sign(side)
    fill = close * (1 + s * slip / BPS)
    notional_filled = fill * sizes
    worst = int(np.argmax(slip))
    per_interval = periods = None
    if series:
        ts_iso = tuple(_iso(df.index))
        per_interval = BacktestSeries(
            ts=ts_iso,
            slippage_bps=tuple(slip.tolist()),
            fill_price=tuple(fill.tolist()),
            high_risk=tuple((slip > HIGH_RISK_BPS).tolist()),
            optimal=tuple((slip < OPTIMAL_BPS).tolist()),
        )
        periods = _risk_periods(ts_iso, slip)
    return BacktestResult(
        side=side,
        size=amount if size is not None else None,
        notional=amount if notional is not None else None,
        start=df.index[0].isoformat().replace("+00:00", "Z"),
        end=df.index[-1].isoformat().replace("+00:00", "Z"),
        lookback_s=None if lookback is None else pd.Timedelta(lookback).total_seconds(),
        intervals=len(df),
        model_source=model.model_source,
        avg_slippage_bps=float(slip.mean()),
        max_slippage_bps=float(slip.max()),
        min_slippage_bps=float(slip.min()),
        median_slippage_bps=float(np.median(slip)),
        high_risk_intervals=int((slip > HIGH_RISK_BPS).sum()),
        optimal_intervals=int((slip < OPTIMAL_BPS).sum()),
        high_risk_threshold_bps=HIGH_RISK_BPS,
        optimal_threshold_bps=OPTIMAL_BPS,
        extrapolated_intervals=int(extra.sum()),
        avg_fill_price=float(notional_filled.sum() / sizes.sum()),
        total_size=float(sizes.sum()),
        total_notional=float(notional_filled.sum()),
        total_cost_quote=float((slip / BPS * close * sizes).sum()),
        spread_bps_percentiles=_pct(2 * model.half_spread_bps * widen),
        atr_bps_percentiles=_pct(df["atr_bps"].to_numpy()),
        slippage_bps_percentiles=_pct(slip),
        worst_interval=df.index[worst].isoformat().replace("+00:00", "Z"),
        series=per_interval,
        risk_periods=periods,
    )


def _iso(idx: pd.DatetimeIndex) -> list[str]:
    """ISO 8601 UTC strings ("...Z"), formatted like ``start``/``end``."""
    return [t.isoformat().replace("+00:00", "Z") for t in idx]


def _risk_periods(ts: Sequence[str], slip: np.ndarray) -> tuple[RiskPeriod, ...]:
    """Contiguous runs of ``slip > HIGH_RISK_BPS`` as ``RiskPeriod`` s."""
    high = np.concatenate(([False], slip > HIGH_RISK_BPS, [False])).astype(np.int8)
    edges = np.diff(high)
    starts, ends = np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0]  # run = [start, end)
    out = []
    for a, b in zip(starts, ends, strict=True):
        k = a + int(np.argmax(slip[a:b]))
        out.append(
            RiskPeriod(
                start=ts[a],
                end=ts[b - 1],
                intervals=int(b - a),
                max_slippage_bps=float(slip[k]),
                worst_interval=ts[k],
            )
        )
    return tuple(out)


def downsample_series(series: BacktestSeries, max_points: int) -> BacktestSeries:
    """At most ``max_points`` points of ``series``: consecutive intervals grouped in buckets of
    ``ceil(n / max_points)``, each bucket represented by its interval of maximum slippage (its own
    ts, fill price and flags), so the peaks and high-risk points are kept. Unchanged if it fits.

    Raises ``InvalidInputError`` for ``max_points < 1``.
    """
    if not isinstance(max_points, int) or max_points < 1:
        raise InvalidInputError(f"max_points must be an integer >= 1; got {max_points!r}")
    n = len(series.ts)
    if n <= max_points:
        return series
    bucket = -(-n // max_points)
    slip = np.asarray(series.slippage_bps, dtype=float)
    keep = [a + int(np.argmax(slip[a : a + bucket])) for a in range(0, n, bucket)]
    return BacktestSeries(
        ts=tuple(series.ts[i] for i in keep),
        slippage_bps=tuple(series.slippage_bps[i] for i in keep),
        fill_price=tuple(series.fill_price[i] for i in keep),
        high_risk=tuple(series.high_risk[i] for i in keep),
        optimal=tuple(series.optimal[i] for i in keep),
        bucket_intervals=bucket * series.bucket_intervals,
    )


def validate_book_model(
    model: BookModel,
    real_views: Sequence[BookView],
    sizes: Sequence[float],
    sides: Sequence[str] = ("buy", "sell"),
) -> BookModelValidation:
    """Slippage error (bps, model - real) of ``model`` at its calibration conditions (scale 1, no
    widening) vs ``market_impact`` on each real book (all sizes in one ``impact_curve`` walk), for
    each size (base units) and side.

    Raises ``InvalidInputError`` for no views or a bad size; errors of ``market_impact`` otherwise.
    """
    if not real_views:
        raise InvalidInputError("validate_book_model needs at least one real BookView")
    amounts = [check_number("each size", s, unit="base units") for s in sizes]
    if not amounts:
        raise InvalidInputError("sizes must be a non-empty sequence of base sizes > 0")
    points = []
    for side_s in sides:
        side = Side.parse(side_s)
        model_slip, _ = model_slippage_bps(model, side, np.asarray(amounts))
        # curves[j, i]: slippage of amounts[i] on real_views[j]
        curves = np.array(
            [[p.slippage_bps for p in impact_curve(v, side, sizes=amounts).points] for v in real_views]
        )
        for i, q in enumerate(amounts):
            real = curves[:, i]
            err = float(model_slip[i]) - real
            points.append(
                ValidationPoint(
                    size=q,
                    side=side,
                    model_slippage_bps=float(model_slip[i]),
                    real_slippage_bps_mean=float(real.mean()),
                    error_bps_mean=float(err.mean()),
                    abs_error_bps_mean=float(np.abs(err).mean()),
                    abs_error_bps_max=float(np.abs(err).max()),
                )
            )
    return BookModelValidation(
        model_source=model.model_source,
        n_books=len(real_views),
        points=tuple(points),
        mean_abs_error_bps=float(np.mean([p.abs_error_bps_mean for p in points])),
        max_abs_error_bps=float(np.max([p.abs_error_bps_max for p in points])),
    )

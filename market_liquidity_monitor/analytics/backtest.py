"""Execution backtests over candle history on a modelled book.

Candle history has no order book, so each candle gets a *modelled* book. Two model types:

- ``calibration.DepthModel`` (the one to use): the average book of many real recorded books of an
  asset, validated out of sample, carried to each candle's trailing 24 h volume and volatility by
  market microstructure invariance, and scaled to assets without a recorded book with a validated
  error (``analytics.calibration``; procedure and figures in docs/analytics.md "Book model").
  A slice sent at candle ``t`` fills at the candle's **open** (taken as mid) on the book modelled
  from the conditions of the 24 h that closed before ``t`` (no look-ahead).
- ``BookModel`` (legacy, one book, per-candle volume and ATR; kept for ``calibrate_book_model``
  callers): see "Legacy per-candle model" below.

Backtest of one order (``backtest_order``): one order of ``size`` (base) or ``notional`` (quote,
converted to size at the arrival mid) executed

- ``Schedule.ARRIVAL``: at one candle (``at``; default the window's first candle);
- ``Schedule.TWAP``: in equal slices at every ``slice_candles``-th candle of the window;
- ``Schedule.VWAP``: at the same candles, each slice proportional to the summed volume of the
  ``slice_candles`` candles it stands for (the candles' realised volume: a perfect-foresight VWAP
  schedule; a live VWAP algorithm would use a forecast volume profile).

Per slice ``k`` (size ``q_k``, mid ``m_k`` = its candle's open): the VWAP fill ``p_k`` walked through
the modelled book (``calibration.depth_slippage_bps``), ``slippage_k = s (p_k - m_k) / m_k * 1e4``
(``s`` = +1 buy, -1 sell) and the taker fee ``p_k q_k fee_bps / 1e4`` (``fee_bps`` and its source
are the caller's). With the decision (arrival) price ``m_0`` = the open of the window's first
candle and ``Q = sum q_k``, the implementation shortfall (Perold 1988, "The implementation
shortfall: paper versus reality", J. Portfolio Management 14(3)) against the paper portfolio
traded at ``m_0`` is

- ``cost_vs_arrival_quote = s (avg_fill_price_incl_fees - m_0) Q``
  ``= market_move_quote + impact_quote + fee_quote``, with
  ``market_move_quote = s sum q_k (m_k - m_0)`` (the price moved before each slice was sent: delay
  / timing cost), ``impact_quote = s sum q_k (p_k - m_k)`` (walking the modelled book) and the fees;
  each also in bps of ``m_0 Q``. The modelled book always fills (past its measured depth it is
  extrapolated, flagged), so there is no opportunity cost of unfilled size;
- ``avg_fill_price = sum p_k q_k / Q``; ``avg_fill_price_incl_fees = sum p_k q_k (1 + s fee) / Q``
  with ``fee = fee_bps / 1e4``;
- P&L marked to the window's last close ``c_N``: buy ``Q (c_N - avg_fill_price_incl_fees)``, sell
  ``Q (avg_fill_price_incl_fees - c_N)``; equivalently ``s Q (c_N - m_0) - cost_vs_arrival_quote``.

The result also carries the per-interval cost curve of the same total size (``cost_curve``: the
order simulated at every candle of the window on the same model, ``backtest_execution``'s result
with its series) and the model's source and validated error (``model_error``: the validation that
applies, ``model_error_at_size``: its bucket nearest to the largest slice's notional).

Per-candle simulation (``backtest_execution``): the order simulated separately at every candle of
the last ``lookback`` of the candles, a cost profile over time, not one order: ``BacktestSeries``
holds each candle's time, slippage, fill price and risk flags (high risk ``> HIGH_RISK_BPS``,
optimal ``< OPTIMAL_BPS``), and ``risk_periods`` the contiguous runs of high-risk intervals.
``downsample_series`` caps the series for display: equal-count buckets of consecutive intervals,
each represented by its interval of maximum slippage (so peaks and risk flags survive).

Legacy per-candle model (``BookModel``):

1. ``calibrate_book_model(views, ref_volume, ref_atr_bps)``: from one or more real ``BookView`` s of
   the asset, the cumulative resting size (base units) within ``g`` bps of mid, per side, on a bps
   grid (``DEFAULT_GRID_BPS``), averaged over the views and divided by ``ref_volume`` (the candle
   volume, base units, of the period the books were recorded in); also the mean half-spread in bps.
   Between grid points the profile is linear (piecewise-linear cumulative depth).
2. Per candle ``t``: depth is scaled by ``volume_t / ref_volume`` and distances are widened by
   ``w_t = clip(atr_bps_t / ref_atr_bps, 0.25, 20)``. ``atr_bps`` is Wilder's average true range
   (J. W. Wilder, "New Concepts in Technical Trading Systems", 1978: ``TR = max(h - l, |h - c_prev|,
   |l - c_prev|)``, smoothed with ``alpha = 1/n``) divided by the close, in bps.
3. The order walks that profile (``model_slippage_bps``, trapezoid on a fine grid, the last segment
   extended past the grid: ``extrapolated_intervals``); the fill price is the candle **close**
   (taken as mid) moved by the slippage. ``validate_book_model`` compares it with
   ``market_impact`` on real books.

``DEFAULT_BOOK_MODEL`` is no longer an assumption: it is ``reference_model.RECORDED_REFERENCE_MODEL``,
the ``DepthModel`` calibrated on the recorded Binance ETH/USDT books and frozen (a test re-derives
it from the recordings), labelled "scaled from binance:ETH/USDT" with its validated scaling error
(BTC/USDT predicted from it), for callers that have no ``BookModelSet`` for the asset.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from enum import StrEnum

import numpy as np

from market_liquidity_monitor.analytics.calibration import (
    MIN_CONDITION_CANDLES,
    DepthModel,
    ErrorPoint,
    ModelValidation,
    candle_frame,
    candle_interval,
    depth_slippage_bps,
    rolling_conditions,
    scale_factors,
)
from market_liquidity_monitor.analytics.liquidity import (
    Result,
    check_number,
    exact_mid,
    impact_curve,
    one_amount,
    side_sign,
)
from market_liquidity_monitor.analytics.reference_model import RECORDED_REFERENCE_MODEL
from market_liquidity_monitor.book.view import BookView
from market_liquidity_monitor.domain.errors import InvalidInputError
from market_liquidity_monitor.domain.instrument import Side
from market_liquidity_monitor.lazy import lazy_module

pd = lazy_module("pandas")  # imported on first use: a book question never needs it

__all__ = [
    "DEFAULT_BOOK_MODEL",
    "DEFAULT_GRID_BPS",
    "HIGH_RISK_BPS",
    "OPTIMAL_BPS",
    "BacktestResult",
    "BacktestSeries",
    "BookModel",
    "BookModelValidation",
    "OrderBacktest",
    "RiskPeriod",
    "Schedule",
    "Slice",
    "ValidationPoint",
    "atr_bps",
    "backtest_execution",
    "backtest_order",
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
    model_source: str  # e.g. "calibrated from 12 book(s) of binance:BTC/USDT"
    n_books: int


#: For callers without a ``BookModelSet``: the frozen ETH/USDT model scaled for assets without a
#: recorded book, with its validated scaling error (module docstring). Not an assumption.
DEFAULT_BOOK_MODEL: DepthModel = RECORDED_REFERENCE_MODEL


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
    mid_price_source: str = "close of each candle"  # the price each interval's order fills around
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


def _factors_before(
    full: pd.DataFrame, index: pd.DatetimeIndex, model: DepthModel
) -> tuple[np.ndarray, np.ndarray]:
    """``scale_factors`` of ``model`` at each candle of ``index`` from the conditions of the 24 h
    that closed before it (``rolling_conditions`` of the previous candle)."""
    cond = rolling_conditions(full).shift(1).loc[index]
    qv, vol = cond["quote_volume_24h"].to_numpy(), cond["volatility_24h_bps"].to_numpy()
    bad = ~(np.isfinite(qv) & np.isfinite(vol) & (qv > 0) & (vol > 0))
    if bad.any():
        first = index[int(np.argmax(bad))]
        raise InvalidInputError(
            f"{int(bad.sum())} candle(s) of the window, from {_iso([first])[0]}, have no usable trailing 24 h quote "
            f"volume and volatility: give at least {MIN_CONDITION_CANDLES + 1} candles (with volume and price moves) "
            "before the window"
        )
    return scale_factors(model.ref, qv, vol, model.scaling)


def _simulate(
    full: pd.DataFrame,
    win: pd.DataFrame,
    model: BookModel | DepthModel,
    side: Side,
    amount: float,
    by_notional: bool,
    lookback: timedelta | pd.Timedelta | None,
    series: bool,
) -> BacktestResult:
    """The order at every candle of ``win`` (rows of ``full`` with an ``atr_bps`` column)."""
    if isinstance(model, DepthModel):
        mid = win["open"].to_numpy()
        sizes = amount / mid if by_notional else np.full(len(win), amount)
        a, b = _factors_before(full, win.index, model)
        slip, extra = depth_slippage_bps(model, side, sizes * mid, a, b)
        spread = 2 * model.half_spread_bps * b
        mid_source = "open of each candle (the order is sent at the candle's start)"
    else:
        mid = win["close"].to_numpy()
        sizes = amount / mid if by_notional else np.full(len(win), amount)
        scale = win["volume"].to_numpy() / model.ref_volume
        widen = np.clip(win["atr_bps"].to_numpy() / model.ref_atr_bps, *_WIDEN_CLIP)
        slip, extra = model_slippage_bps(model, side, sizes, scale, widen)
        spread = 2 * model.half_spread_bps * widen
        mid_source = "close of each candle"
    fill = mid * (1 + side_sign(side) * slip / BPS)
    notional_filled = fill * sizes
    worst = int(np.argmax(slip))
    per_interval = periods = None
    if series:
        ts_iso = tuple(_iso(win.index))
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
        size=None if by_notional else amount,
        notional=amount if by_notional else None,
        start=_iso(win.index[:1])[0],
        end=_iso(win.index[-1:])[0],
        lookback_s=None if lookback is None else pd.Timedelta(lookback).total_seconds(),
        intervals=len(win),
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
        total_cost_quote=float((slip / BPS * mid * sizes).sum()),
        spread_bps_percentiles=_pct(spread),
        atr_bps_percentiles=_pct(win["atr_bps"].to_numpy()),
        slippage_bps_percentiles=_pct(slip),
        worst_interval=_iso(win.index[worst : worst + 1])[0],
        mid_price_source=mid_source,
        series=per_interval,
        risk_periods=periods,
    )


def _check_model(model) -> None:
    if isinstance(model, BookModel | DepthModel):
        return
    if model is None:
        raise InvalidInputError(
            "no book model was given: calibrate one on recorded books or scale one from a calibrated asset "
            "(analytics.calibration.build_model_set(...).model_for(symbol, conditions))"
        )
    raise InvalidInputError(
        f"model must be a calibration.DepthModel or a BookModel; got {type(model).__name__}"
    )


def backtest_execution(
    candles: pd.DataFrame,
    model: BookModel | DepthModel,
    side: Side | str,
    size: float | None = None,
    notional: float | None = None,
    lookback: timedelta | pd.Timedelta | None = None,
    atr_window: int = 14,
    series: bool = False,
) -> BacktestResult:
    """Simulate a taker order of ``size`` (base) or ``notional`` (quote, converted at each candle's
    mid) separately at every candle of the last ``lookback`` of ``candles`` (relative to the data's
    own last timestamp; None = all), on the model book of each candle (module docstring): a cost
    profile over time, not one order (``backtest_order`` is one order).

    ``model``: a ``calibration.DepthModel`` (each candle's order fills around the candle's open, on
    the book of the trailing 24 h conditions before it; the window needs >= ``MIN_CONDITION_CANDLES``
    + 1 candles before it) or a legacy ``BookModel`` (around the close, candles with volume > 0).
    ``candles``: columns open/high/low/close/volume, a DatetimeIndex or a ``date`` column.
    Raises ``InvalidInputError`` for no or a wrong model, missing columns, a bad amount, fewer
    than ``atr_window + 1`` candles, a lookback that leaves no candle after the ATR warm-up, or
    (DepthModel) too few candles before the window.

    ``series=True`` adds the per-interval ``series`` (every candle, not downsampled) and the
    ``risk_periods``; off by default to keep the result small (e.g. for the assistant's tools).
    """
    side = Side.parse(side)
    amount, by_notional = one_amount(size, notional)
    _check_model(model)
    df = candle_frame(candles)
    if len(df) < atr_window + 1:
        raise InvalidInputError(f"{len(df)} candles; at least atr_window + 1 = {atr_window + 1} are needed")
    df = df.assign(atr_bps=atr_bps(df, atr_window))
    win = df.iloc[atr_window:]  # drop the ATR warm-up
    if lookback is not None:
        lb = pd.Timedelta(lookback)
        win = win[win.index > win.index[-1] - lb] if len(win) else win
    if isinstance(model, BookModel):
        win = win[win["volume"] > 0]
    if win.empty:
        raise InvalidInputError("no candle with volume > 0 in the window after the ATR warm-up")
    return _simulate(df, win, model, side, amount, by_notional, lookback, series)


# ---------------------------------------------------------------------------- one order


class Schedule(StrEnum):
    """How one order is executed over the window (module docstring)."""

    ARRIVAL = "arrival"
    TWAP = "twap"
    VWAP = "vwap"


class Slice(Result):
    """One child order of a ``backtest_order`` schedule."""

    ts: str  # ISO 8601 UTC open time of the candle the slice is sent at
    size: float  # base units
    mid_price: float  # the candle's open, taken as mid
    fill_price: float  # VWAP on the modelled book, quote per base unit, excl. fees
    slippage_bps: float  # vs mid_price, positive = cost
    fee_quote: float  # fill_price * size * fee_bps / 1e4
    size_factor: float  # calibration.scale_factors at the slice (1 = the model's own conditions)
    cost_factor: float
    extrapolated: bool  # the slice walked past the modelled (measured) depth


class OrderBacktest(Result):
    """One order executed over a window of candles on a modelled book (module docstring)."""

    symbol: str | None
    side: Side
    schedule: Schedule
    slice_candles: int  # candles per slice (TWAP/VWAP); 1 for an arrival order
    size_requested: float | None  # base units, if the order was given as a size
    notional_requested: float | None  # quote units, if given as a notional (converted at the arrival mid)
    start: str  # ISO 8601 UTC open time of the window's first candle
    end: str  # ISO 8601 UTC open time of the window's last candle
    interval_s: float  # candle interval
    candles: int  # candles in the window
    arrival_ts: str  # = start
    arrival_mid_price: float  # decision price m_0
    arrival_price_source: str
    filled_size: float  # base units (the modelled book always fills)
    filled_notional_quote: float  # sum fill_price * size, excl. fees
    avg_fill_price: float  # excl. fees
    avg_fill_price_incl_fees: float
    fee_bps: float
    fee_source: str
    fee_quote: float
    cost_vs_arrival_quote: float  # implementation shortfall, quote units, positive = cost
    cost_vs_arrival_bps: float  # of arrival_mid_price * filled_size
    market_move_quote: float
    market_move_bps: float
    impact_quote: float
    impact_bps: float
    fee_cost_bps: float
    last_close: float  # close of the window's last candle
    last_close_ts: str  # ISO 8601 UTC open time of that candle
    pnl_quote: float  # position marked to last_close
    pnl_pct: float  # pnl_quote / (avg_fill_price_incl_fees * filled_size) * 100
    slices: tuple[Slice, ...]
    extrapolated_slices: int
    max_slice_notional_quote: float  # the largest slice's size * mid
    model_source: str
    model_calibrated_on: str  # "venue:symbol" of the real books behind the model
    model_scaled: bool  # True when the model is another asset's, scaled
    model_error: ModelValidation | None  # the validated error that applies to this model's use
    model_error_at_size: ErrorPoint | None  # its bucket nearest to max_slice_notional_quote (same side)
    model_error_note: str
    cost_curve: BacktestResult  # the same total size at every candle of the window (with series)


def _window(df: pd.DataFrame, lookback, start, end) -> pd.DataFrame:
    if lookback is not None and (start is not None or end is not None):
        raise InvalidInputError("give either lookback or start/end for the window, not both")
    if lookback is not None:
        lb = pd.Timedelta(lookback)
        if lb <= pd.Timedelta(0):
            raise InvalidInputError(f"lookback must be a positive duration; got {lookback!r}")
        win = df[df.index > df.index[-1] - lb]
    else:
        lo = _utc(start) if start is not None else df.index[0]
        hi = _utc(end) if end is not None else df.index[-1]
        if hi < lo:
            raise InvalidInputError(f"end {hi.isoformat()} is before start {lo.isoformat()}")
        win = df[(df.index >= lo) & (df.index <= hi)]
    if win.empty:
        raise InvalidInputError(
            f"no candle in the window; the candles run from {_iso(df.index[:1])[0]} to {_iso(df.index[-1:])[0]}"
        )
    return win


def _utc(ts) -> pd.Timestamp:
    try:
        t = pd.Timestamp(ts)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"not a timestamp: {ts!r} (use ISO 8601, e.g. 2024-09-01T00:00Z)") from exc
    return t.tz_localize("UTC") if t.tz is None else t.tz_convert("UTC")


def _schedule(
    win: pd.DataFrame, schedule: Schedule, total: float, at, slice_candles: int, step: pd.Timedelta
) -> tuple[np.ndarray, np.ndarray]:
    """Positions (in ``win``) of the slice candles and the slice sizes."""
    n = len(win)
    if schedule is Schedule.ARRIVAL:
        if at is None:
            return np.array([0]), np.array([total])
        t = _utc(at)
        pos = int(np.searchsorted(win.index, t, side="right")) - 1  # the candle holding t
        if pos < 0 or t >= win.index[-1] + step:
            raise InvalidInputError(
                f"at={t.isoformat()} is outside the window {_iso(win.index[:1])[0]} .. {_iso(win.index[-1:])[0]} "
                f"(+{step})"
            )
        return np.array([pos]), np.array([total])
    if at is not None:
        raise InvalidInputError(f"at= applies to the arrival schedule only, not {schedule.value}")
    pos = np.arange(0, n, slice_candles)
    if schedule is Schedule.TWAP:
        return pos, np.full(pos.size, total / pos.size)
    vol = win["volume"].to_numpy()
    block = np.add.reduceat(vol, pos)
    if not block.sum() > 0:
        raise InvalidInputError("the window's candles have no volume, so there is no VWAP schedule")
    return pos, total * block / block.sum()


def backtest_order(
    candles: pd.DataFrame,
    model: DepthModel,
    side: Side | str,
    size: float | None = None,
    notional: float | None = None,
    *,
    fee_bps: float,
    fee_source: str,
    schedule: Schedule | str = Schedule.ARRIVAL,
    at=None,
    slice_candles: int = 1,
    lookback: timedelta | pd.Timedelta | None = None,
    start=None,
    end=None,
    symbol: str | None = None,
    atr_window: int = 14,
) -> OrderBacktest:
    """One taker order of ``size`` (base) or ``notional`` (quote) over a window of ``candles`` on the
    modelled book of ``model``: implementation shortfall vs the arrival price (Perold 1988) split
    into market move, impact and fees, P&L marked to the window's last close, the per-slice
    schedule and the per-interval cost curve of the same size (module docstring has every formula).

    Window: the last ``lookback`` of the candles (``(last - lookback, last]``), or ``start`` ..
    ``end`` (inclusive candle open times; None = the data's bounds). The candles must also hold
    >= ``MIN_CONDITION_CANDLES`` + 1 candles before the window (trailing 24 h conditions; a full
    24 h is the documented calibration) and, for the cost curve's ATR, ``atr_window`` candles.
    ``schedule``: ``arrival`` (at the candle holding ``at``, default the first), ``twap`` or
    ``vwap`` (one slice per ``slice_candles`` candles). ``fee_bps``: taker fee in bps of the fill's
    notional (>= 0) and ``fee_source`` where it comes from (e.g. "Binance spot VIP 0 taker
    0.100 %"). ``symbol``: only labels the result.

    Raises ``InvalidInputError`` for a model that is not a ``DepthModel``, a bad amount, fee,
    schedule, ``slice_candles``, ``at`` or window, too few candles before the window, or candles
    lacking columns.
    """
    side = Side.parse(side)
    amount, by_notional = one_amount(size, notional)
    if not isinstance(model, DepthModel):
        _check_model(model)
        raise InvalidInputError(
            "backtest_order needs a calibration.DepthModel (validated, with its error); the legacy BookModel "
            "is only for backtest_execution"
        )
    fee = check_number("fee_bps", fee_bps, allow_zero=True, unit="bps of the fill's notional")
    if not isinstance(fee_source, str) or not fee_source.strip():
        raise InvalidInputError(
            "fee_source must say where fee_bps comes from (e.g. the venue's fee schedule)"
        )
    try:
        schedule = Schedule(str(schedule).strip().lower())
    except ValueError as exc:
        valid = ", ".join(s.value for s in Schedule)
        raise InvalidInputError(f"schedule must be one of {valid}; got {schedule!r}") from exc
    if isinstance(slice_candles, bool) or not isinstance(slice_candles, int) or slice_candles < 1:
        raise InvalidInputError(f"slice_candles must be an integer >= 1; got {slice_candles!r}")
    df = candle_frame(candles)
    df = df.assign(atr_bps=atr_bps(df, atr_window))
    step = candle_interval(df)
    win = _window(df, lookback, start, end)
    first = df.index.get_loc(win.index[0])
    if first < max(MIN_CONDITION_CANDLES + 1, atr_window):
        raise InvalidInputError(
            f"{first} candle(s) before the window's start {_iso(win.index[:1])[0]}; at least "
            f"{max(MIN_CONDITION_CANDLES + 1, atr_window)} are needed (trailing 24 h conditions and the ATR)"
        )
    s = side_sign(side)
    arrival = float(win["open"].iloc[0])
    total = amount / arrival if by_notional else amount
    pos, q = _schedule(
        win, schedule, total, at, slice_candles if schedule is not Schedule.ARRIVAL else 1, step
    )
    at_idx = win.index[pos]
    mid = win["open"].to_numpy()[pos]
    a, b = _factors_before(df, at_idx, model)
    slip, extra = depth_slippage_bps(model, side, q * mid, a, b)
    fill = mid * (1 + s * slip / BPS)
    fees = fill * q * fee / BPS
    filled = float(q.sum())
    gross = float((fill * q).sum())
    avg = gross / filled
    avg_incl = (gross + s * float(fees.sum())) / filled
    base = arrival * filled
    move_q = s * float((q * (mid - arrival)).sum())
    impact_q = s * float((q * (fill - mid)).sum())
    fee_q = float(fees.sum())
    cost_q = s * (avg_incl - arrival) * filled
    last_close = float(win["close"].iloc[-1])
    pnl = s * filled * (last_close - avg_incl)
    ts_iso = _iso(at_idx)
    slices = tuple(
        Slice(
            ts=ts_iso[i],
            size=float(q[i]),
            mid_price=float(mid[i]),
            fill_price=float(fill[i]),
            slippage_bps=float(slip[i]),
            fee_quote=float(fees[i]),
            size_factor=float(a[i]),
            cost_factor=float(b[i]),
            extrapolated=bool(extra[i]),
        )
        for i in range(pos.size)
    )
    biggest = float((q * mid).max())
    err_pt, note = _error_at(model, side, biggest, int(extra.sum()))
    curve = _simulate(df, win, model, side, total, False, None, True)
    return OrderBacktest(
        symbol=symbol,
        side=side,
        schedule=schedule,
        slice_candles=1 if schedule is Schedule.ARRIVAL else slice_candles,
        size_requested=None if by_notional else amount,
        notional_requested=amount if by_notional else None,
        start=_iso(win.index[:1])[0],
        end=_iso(win.index[-1:])[0],
        interval_s=step.total_seconds(),
        candles=len(win),
        arrival_ts=_iso(win.index[:1])[0],
        arrival_mid_price=arrival,
        arrival_price_source="open of the window's first candle (the decision price)",
        filled_size=filled,
        filled_notional_quote=gross,
        avg_fill_price=avg,
        avg_fill_price_incl_fees=avg_incl,
        fee_bps=fee,
        fee_source=fee_source,
        fee_quote=fee_q,
        cost_vs_arrival_quote=cost_q,
        cost_vs_arrival_bps=cost_q / base * BPS,
        market_move_quote=move_q,
        market_move_bps=move_q / base * BPS,
        impact_quote=impact_q,
        impact_bps=impact_q / base * BPS,
        fee_cost_bps=fee_q / base * BPS,
        last_close=last_close,
        last_close_ts=_iso(win.index[-1:])[0],
        pnl_quote=pnl,
        pnl_pct=pnl / (avg_incl * filled) * 100,
        slices=slices,
        extrapolated_slices=int(extra.sum()),
        max_slice_notional_quote=biggest,
        model_source=model.model_source,
        model_calibrated_on=model.calibrated_on,
        model_scaled=model.scaled_from is not None,
        model_error=model.error,
        model_error_at_size=err_pt,
        model_error_note=note,
        cost_curve=curve,
    )


def _error_at(
    model: DepthModel, side: Side, notional: float, extrapolated: int
) -> tuple[ErrorPoint | None, str]:
    """The validation bucket nearest to ``notional`` and a sentence on how far it applies."""
    if model.error is None:
        return None, "the model has no validation: its error is unknown"
    v = model.error
    pt = v.point(side, notional)
    ns = [p.notional for p in v.points if p.side is side]
    note = (
        f"{v.label} ({v.n_books} books of {v.target}): at {pt.notional:,.0f} quote ({side.value}) mean |error| "
        f"{pt.abs_error_bps_mean:.2f} bps, max {pt.abs_error_bps_max:.2f} bps; over all buckets mean "
        f"{v.mean_abs_error_bps:.2f}, max {v.max_abs_error_bps:.2f} bps"
    )
    if notional > max(ns) * 1.5 or notional < min(ns) / 1.5:
        note += (
            f"; the largest slice ({notional:,.0f} quote at mid) is outside the validated range "
            f"{min(ns):,.0f}..{max(ns):,.0f}, so the error there is not measured"
        )
    if extrapolated:
        note += f"; {extrapolated} slice(s) walked past the modelled depth (extrapolated)"
    return pt, note


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

"""Book models for candle history: calibrated on real recorded books, validated out of sample, and
scaled to assets without a recorded book.

Pure functions of ``BookView`` s and candle frames (no I/O); the replay that samples recorded books
lives in :mod:`market_liquidity_monitor.ingest.book_samples`. The procedure, the validation table
and the figures measured on the recorded data are in ``docs/analytics.md`` ("Book model").

Market conditions (``rolling_conditions``, ``conditions_at``), per candle ``t`` over the trailing
24 h ``(t - 24 h, t]``:

- ``quote_volume_24h = mean(volume * close) * n24`` (quote units per 24 h; ``n24`` = candles per
  24 h; ``volume * close`` stands in for the candle's quote volume, which the candle files lack);
- ``volatility_24h_bps = std(log(close_i / close_{i-1}), ddof=1) * sqrt(n24) * 1e4``, the 24 h
  realised volatility of close-to-close returns (as in Andersen & Bollerslev 1998, "Answering the
  skeptics", for the sum of squared intraday returns).

Both need at least ``MIN_CONDITION_CANDLES`` candles in the window.

The model (``DepthModel``) is an *average modelled book* in notional space. For each calibration
view and side, let ``g_v(x)`` be the distance from mid (bps) of the level that holds the ``x``-th
quote unit of cumulative notional at mid (``size * mid``, best level first), so that the view's VWAP
slippage of an order of notional ``X`` is ``(1/X) * A_v(X)`` with ``A_v(X) = integral_0^X g_v``
(the level walk of ``liquidity.market_impact``, exactly). On a geometric grid of cumulative
notionals ``x_1 < ... < x_n`` (``KNOTS_PER_DECADE`` per decade from ``MIN_KNOT_FRAC`` of the
reference 24 h quote volume, up to the smallest depth any view holds within
``COMPLETE_WITHIN_BPS``), the model has one level per grid interval: notional ``x_i - x_{i-1}`` at
distance ``mean_v (A_v(x_i) - A_v(x_{i-1})) / (x_i - x_{i-1})``. Averaging the walks rather than
the depths (quantile averaging) makes the model's slippage at every knot equal the mean slippage of
the calibration views, with no convexity bias; the levels' distances are non-decreasing because
each ``g_v`` is. Knots are stored as fractions of the reference ``quote_volume_24h``.

Walk (``depth_slippage_bps``): the ``market_impact`` walk over those levels (best first, the last
level touched pro-rated), in notional at mid. Past the last knot the model has no measured depth:
distances grow linearly at the slope between the last two levels' midpoints, and the result is
flagged ``extrapolated``. ``modelled_book`` gives the same book as a ``BookView`` (prices
``mid * (1 -/+ distance / 1e4)``, sizes ``notional / mid``) that ``market_impact`` walks to the same
slippage within the knots.

Scaling to other conditions (another time, or another asset), ``ScalingLaw.INVARIANCE`` (default):
Kyle & Obizhaeva (2016), "Market Microstructure Invariance: Empirical Hypotheses", Econometrica
84(4): the cost of an order in bps is ``(1/L) * f(X * L / ...)`` with illiquidity
``1/L ~ (sigma^2 / (P * V))^(1/3)``. With ``r = (vol_t / vol_ref)^(2/3) * (qv_t / qv_ref)^(-1/3)``
(the ratio of illiquidities), ``slippage_t(X) = r * slippage_ref(X * r)``, i.e. the modelled book at
``t`` holds ``D_t(g) = D_ref(g / r) / r`` and its half-spread is ``r * half_spread_ref``.
``ScalingLaw.PROPORTIONAL`` (depth proportional to volume, distances to volatility: the
``sigma * f(X / V)`` form of Almgren, Thum, Hauptmann & Li 2005, "Direct estimation of equity
market impact") is kept for comparison: ``slippage_t(X) = (vol_t / vol_ref) *
slippage_ref(X * qv_ref / qv_t)``.

Validation (``validate_depth_model``): per side and notional bucket, the model's slippage at the
views' conditions vs ``impact_curve`` on each real view for ``size = notional / mid``; mean and max
``|model - real|`` in bps. ``build_model_set`` calibrates every asset with recorded books on the
first part of its views, validates in sample and out of sample on the rest, and cross-validates the
scaling by predicting each calibrated asset from every other one; ``BookModelSet.model_for`` gives
the model for any symbol with the validated error that applies to it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import timedelta
from enum import StrEnum

import numpy as np

from market_liquidity_monitor.analytics.liquidity import (
    Result,
    check_number,
    exact_mid,
    impact_curve,
)
from market_liquidity_monitor.book.view import BookView
from market_liquidity_monitor.domain.errors import InsufficientLiquidityError, InvalidInputError
from market_liquidity_monitor.domain.instrument import Side
from market_liquidity_monitor.lazy import lazy_module

pd = lazy_module("pandas")  # imported on first use: a book question never needs it

__all__ = [
    "COMPLETE_WITHIN_BPS",
    "CONDITIONS_WINDOW",
    "KNOTS_PER_DECADE",
    "MIN_CONDITION_CANDLES",
    "MIN_KNOT_FRAC",
    "VALIDATION_NOTIONALS",
    "BookModelSet",
    "DepthModel",
    "ErrorPoint",
    "MarketConditions",
    "ModelValidation",
    "ScalingLaw",
    "build_model_set",
    "calibrate_depth_model",
    "candle_frame",
    "conditions_at",
    "depth_slippage_bps",
    "modelled_book",
    "rolling_conditions",
    "scale_factors",
    "validate_depth_model",
]

BPS = 1e4
#: Distance from mid (bps) within which the sampled books are complete: the recorded Binance books
#: after their warm-up (docs/analytics.md, "Book completeness"). The model's depth ends there.
COMPLETE_WITHIN_BPS = 50.0
#: Knots of cumulative notional per decade, from MIN_KNOT_FRAC of the reference 24 h quote volume.
KNOTS_PER_DECADE = 8
MIN_KNOT_FRAC = 1e-7
#: Order notionals (quote units at mid) of the validation buckets.
VALIDATION_NOTIONALS: tuple[float, ...] = (10_000.0, 100_000.0, 1_000_000.0, 5_000_000.0)
CONDITIONS_WINDOW = timedelta(hours=24)  # a pandas rolling window (pandas loads on first use)
MIN_CONDITION_CANDLES = 12
_CANDLE_COLUMNS = ("open", "high", "low", "close", "volume")


class ScalingLaw(StrEnum):
    """How a depth profile measured at one set of conditions is carried to another (module doc)."""

    INVARIANCE = "invariance"
    PROPORTIONAL = "proportional"


# ----------------------------------------------------------------------------------- results


class MarketConditions(Result):
    """Trading activity of one asset over the 24 h ending at ``ts`` (module docstring)."""

    ts: str  # ISO 8601 UTC: close time of the window's last candle
    quote_volume_24h: float  # quote units per 24 h
    volatility_24h_bps: float  # realised volatility of the 24 h, bps
    candles: int  # candles in the window
    source: str  # which candles, e.g. "BTC/USDT 5m candles"


class ErrorPoint(Result):
    """Model vs real books for one side and order notional (slippage vs mid, bps)."""

    side: Side
    notional: float  # quote units at mid; each real book walks size = notional / its mid
    n_books: int
    model_slippage_bps: float
    real_slippage_bps_mean: float
    real_slippage_bps_min: float
    real_slippage_bps_max: float
    error_bps_mean: float  # mean of model - real
    abs_error_bps_mean: float  # mean of |model - real|
    abs_error_bps_max: float  # max of |model - real|


class ModelValidation(Result):
    """A model's slippage error against real books of ``target`` (``ErrorPoint`` per side x notional)."""

    label: str  # e.g. "out-of-sample", "ETH/USDT predicted from BTC/USDT (out of sample)"
    model_source: str
    calibrated_on: str  # instrument of the model, "venue:symbol"
    target: str  # instrument of the real books, "venue:symbol"
    scaling: ScalingLaw
    n_books: int
    books_start: str | None  # ISO 8601 UTC of the first and last real book
    books_end: str | None
    conditions: MarketConditions  # the target's conditions the model was evaluated at
    size_factor: float  # order notional multiplier into the reference book (1 at the model's own conditions)
    cost_factor: float  # slippage multiplier (1 at the model's own conditions)
    points: tuple[ErrorPoint, ...]
    mean_abs_error_bps: float  # mean over points of abs_error_bps_mean
    max_abs_error_bps: float  # max over points of abs_error_bps_max

    def point(self, side: Side | str, notional: float) -> ErrorPoint:
        """The point of ``side`` whose notional is nearest (in log) to ``notional``."""
        side = Side.parse(side)
        pts = [p for p in self.points if p.side is side]
        if not pts:
            raise InvalidInputError(f"validation {self.label!r} has no {side.value} points")
        return min(pts, key=lambda p: abs(math.log(p.notional / notional)))


class DepthModel(Result):
    """Average modelled book of real books, relative to the reference 24 h quote volume (module doc).

    Level ``i`` holds notional at mid ``(depth_frac[i] - depth_frac[i-1]) * ref.quote_volume_24h``
    (``depth_frac[-1] = 0``) at ``bid_distance_bps[i]`` / ``ask_distance_bps[i]`` from mid.
    """

    venue: str
    symbol: str  # the calibration asset
    depth_frac: tuple[float, ...]  # cumulative notional at mid / ref.quote_volume_24h at each knot
    bid_distance_bps: tuple[float, ...]  # mean distance of each level, bps from mid
    ask_distance_bps: tuple[float, ...]
    complete_within_bps: float  # the views were complete within this distance; depth ends at the last knot
    half_spread_bps: float  # mean half-spread of the calibration views (information)
    ref: MarketConditions
    n_books: int
    books_start: str | None
    books_end: str | None
    scaling: ScalingLaw = ScalingLaw.INVARIANCE
    model_source: str
    applies_to: str | None = None  # the symbol this copy is used for when scaled to another asset
    scaled_from: str | None = None  # "venue:symbol" of the calibration asset when scaled
    error: ModelValidation | None = None  # the validated error that applies to this use

    @property
    def max_notional(self) -> float:
        """Modelled depth per side at the reference conditions, quote units (beyond: extrapolated)."""
        return self.depth_frac[-1] * self.ref.quote_volume_24h

    @property
    def calibrated_on(self) -> str:
        return f"{self.venue}:{self.symbol}"

    def scaled(self, target: str, error: ModelValidation | None, note: str = "") -> DepthModel:
        """This profile used for ``target`` (another symbol), with the error that applies to it."""
        src = f"scaled from {self.calibrated_on} by {_law_text(self.scaling)}"
        if note:
            src += f" ({note})"
        if error is not None:
            src += f"; {_error_text(error)}"
        return self.model_copy(
            update={
                "applies_to": target,
                "scaled_from": self.calibrated_on,
                "error": error,
                "model_source": src,
            }
        )


class BookModelSet(Result):
    """Models of every calibrated asset and their validations (``build_model_set``)."""

    models: tuple[DepthModel, ...]  # one per calibrated asset, ``error`` = its out-of-sample validation
    in_sample: tuple[ModelValidation, ...]
    out_of_sample: tuple[ModelValidation, ...]
    cross: tuple[ModelValidation, ...]  # each calibrated asset predicted from every other one

    def calibrated(self, symbol: str) -> DepthModel | None:
        """The model calibrated on ``symbol`` (unified, e.g. ``ETH/USDT``), or None."""
        for m in self.models:
            if m.symbol == symbol:
                return m
        return None

    def model_for(self, symbol: str, conditions: MarketConditions | None = None) -> DepthModel:
        """The model for ``symbol``: its own calibration when it has recorded books, else the
        calibrated asset nearest to it in log trading activity ``volatility_24h * quote_volume_24h``
        (the invariance variable) at ``conditions``, scaled, carrying as ``error`` the worst (largest
        mean |error|) cross-validation of that reference predicting another calibrated asset.

        Raises ``InvalidInputError`` when ``symbol`` has no calibration and ``conditions`` is None,
        or when there is no calibrated model at all.
        """
        own = self.calibrated(symbol)
        if own is not None:
            return own
        if not self.models:
            raise InvalidInputError("the model set holds no calibrated model")
        if conditions is None:
            raise InvalidInputError(
                f"{symbol} has no recorded book; pass its MarketConditions to pick and scale a reference model "
                f"(calibrated: {', '.join(m.symbol for m in self.models)})"
            )
        w = _activity(conditions)
        ref = min(self.models, key=lambda m: abs(math.log(w / _activity(m.ref))))
        errs = [v for v in self.cross if v.calibrated_on == ref.calibrated_on]
        err = max(errs, key=lambda v: v.mean_abs_error_bps) if errs else None
        note = (
            f"nearest calibrated asset to {symbol} in trading activity: {_activity(ref.ref):.3g} vs {w:.3g} "
            "quote units per 24 h"
        )
        if err is None:
            note += "; this scaling has not been validated (no second calibrated asset)"
        return ref.scaled(symbol, err, note)


def _activity(c: MarketConditions) -> float:
    return c.volatility_24h_bps / BPS * c.quote_volume_24h


def _law_text(law: ScalingLaw) -> str:
    if law is ScalingLaw.INVARIANCE:
        return "market microstructure invariance (Kyle & Obizhaeva 2016)"
    return "depth proportional to quote volume, distances to volatility"


def _error_text(v: ModelValidation) -> str:
    return (
        f"validated {v.label} on {v.n_books} books of {v.target}: mean |error| {v.mean_abs_error_bps:.2f} bps, "
        f"max {v.max_abs_error_bps:.2f} bps over {_buckets_text(v)}"
    )


def _buckets_text(v: ModelValidation) -> str:
    ns = sorted({p.notional for p in v.points})
    sides = sorted({p.side.value for p in v.points})
    return f"{'/'.join(f'{n:,.0f}' for n in ns)} quote {'+'.join(sides)} orders"


# ----------------------------------------------------------------------------------- candles


def candle_frame(candles: pd.DataFrame) -> pd.DataFrame:
    """``candles`` as float OHLCV columns on a sorted UTC DatetimeIndex (candle open times).

    Accepts a DatetimeIndex or a ``date`` / ``ts`` column. Raises ``InvalidInputError`` for missing
    columns, no time index, fewer than 2 candles, or repeated/unsorted times.
    """
    if not isinstance(candles, pd.DataFrame):
        raise InvalidInputError(f"candles must be a pandas DataFrame; got {type(candles).__name__}")
    missing = [c for c in _CANDLE_COLUMNS if c not in candles.columns]
    if missing:
        raise InvalidInputError(f"candles lack columns {missing}; need open, high, low, close, volume")
    if isinstance(candles.index, pd.DatetimeIndex):
        idx = candles.index
    else:
        col = next((c for c in ("date", "ts") if c in candles.columns), None)
        if col is None:
            raise InvalidInputError("candles need a DatetimeIndex or a 'date'/'ts' column (UTC timestamps)")
        idx = pd.DatetimeIndex(candles[col])
    idx = idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")
    df = pd.DataFrame({c: candles[c].to_numpy(dtype=float) for c in _CANDLE_COLUMNS}, index=idx)
    if len(df) < 2:
        raise InvalidInputError(f"{len(df)} candle(s); at least 2 are needed")
    if not df.index.is_monotonic_increasing or df.index.has_duplicates:
        raise InvalidInputError("candle times must be strictly increasing")
    return df


def candle_interval(df: pd.DataFrame) -> pd.Timedelta:
    """The candles' interval: the median spacing of their open times."""
    return pd.Timedelta((df.index[1:] - df.index[:-1]).median())


def rolling_conditions(candles: pd.DataFrame) -> pd.DataFrame:
    """Per candle ``t``: ``quote_volume_24h``, ``volatility_24h_bps`` and ``candles`` over the candles
    whose open time is in ``(t - 24 h, t]`` (module docstring); NaN where fewer than
    ``MIN_CONDITION_CANDLES`` candles (or returns) are in the window. Index as ``candle_frame``."""
    df = candle_frame(candles)
    n24 = CONDITIONS_WINDOW / candle_interval(df)
    qv = (df["volume"] * df["close"]).rolling(CONDITIONS_WINDOW, min_periods=MIN_CONDITION_CANDLES)
    ret = np.log(df["close"]).diff().rolling(CONDITIONS_WINDOW, min_periods=MIN_CONDITION_CANDLES)
    count = df["close"].rolling(CONDITIONS_WINDOW).count()
    return pd.DataFrame(
        {
            "quote_volume_24h": qv.mean() * n24,
            "volatility_24h_bps": ret.std(ddof=1) * math.sqrt(n24) * BPS,
            "candles": count.astype(int),
        },
        index=df.index,
    )


def conditions_at(candles: pd.DataFrame, ts: pd.Timestamp | str, source: str = "candles") -> MarketConditions:
    """``MarketConditions`` over the 24 h of candles that had closed by ``ts`` (open + interval <= ts).

    Raises ``InvalidInputError`` if fewer than ``MIN_CONDITION_CANDLES`` such candles exist.
    """
    df = candle_frame(candles)
    ts = _utc(ts)
    step = candle_interval(df)
    closed = df[df.index + step <= ts]
    if len(closed) < MIN_CONDITION_CANDLES + 1:
        raise InvalidInputError(
            f"{len(closed)} candle(s) of {source} had closed by {ts.isoformat()}; at least "
            f"{MIN_CONDITION_CANDLES + 1} are needed for the trailing 24 h volume and volatility"
        )
    row = rolling_conditions(closed).iloc[-1]
    return conditions_from_row(row, closed.index[-1] + step, source)


def conditions_from_row(row: pd.Series, end: pd.Timestamp, source: str) -> MarketConditions:
    """``MarketConditions`` from one row of ``rolling_conditions`` whose window ends at ``end``."""
    qv, vol = float(row["quote_volume_24h"]), float(row["volatility_24h_bps"])
    if not (math.isfinite(qv) and math.isfinite(vol) and qv > 0 and vol > 0):
        raise InvalidInputError(
            f"{source}: no usable 24 h volume/volatility at {end.isoformat()} (quote volume {qv}, "
            f"volatility {vol} bps); need >= {MIN_CONDITION_CANDLES} candles with volume and price moves"
        )
    return MarketConditions(
        ts=_iso(end), quote_volume_24h=qv, volatility_24h_bps=vol, candles=int(row["candles"]), source=source
    )


def _utc(ts) -> pd.Timestamp:
    t = pd.Timestamp(ts)
    return t.tz_localize("UTC") if t.tz is None else t.tz_convert("UTC")


def _iso(t: pd.Timestamp) -> str:
    return t.isoformat().replace("+00:00", "Z")


# ----------------------------------------------------------------------------------- scaling


def scale_factors(
    ref: MarketConditions,
    quote_volume_24h: np.ndarray | float,
    volatility_24h_bps: np.ndarray | float,
    law: ScalingLaw | str = ScalingLaw.INVARIANCE,
) -> tuple[np.ndarray, np.ndarray]:
    """``(size_factor, cost_factor)`` carrying a profile measured at ``ref`` to the given conditions
    (arrays broadcast): ``slippage = cost_factor * slippage_ref(notional * size_factor)``.

    Invariance: both are ``r = (vol / vol_ref)^(2/3) * (qv / qv_ref)^(-1/3)``; proportional:
    ``size_factor = qv_ref / qv``, ``cost_factor = vol / vol_ref`` (module docstring).
    """
    law = ScalingLaw(law)
    v = np.asarray(quote_volume_24h, dtype=float) / ref.quote_volume_24h
    s = np.asarray(volatility_24h_bps, dtype=float) / ref.volatility_24h_bps
    if law is ScalingLaw.INVARIANCE:
        r = s ** (2.0 / 3.0) * v ** (-1.0 / 3.0)
        return r, r
    return 1.0 / v, s


# ------------------------------------------------------------------------------- calibration


def _side_walk(v: BookView, side: Side, mid: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per level of the side a ``side`` order consumes: distance from mid (bps), cumulative notional
    at mid and cumulative ``notional * distance`` (the walk's area), best first."""
    if side is Side.BUY:
        prices, sizes, sign = v.ask_prices, v.ask_sizes, 1.0
    else:
        prices, sizes, sign = v.bid_prices, v.bid_sizes, -1.0
    dist = sign * (np.asarray(prices, dtype=float) - mid) / mid * BPS
    notional = np.asarray(sizes, dtype=float) * mid
    return dist, np.cumsum(notional), np.cumsum(notional * dist)


def _area(dist: np.ndarray, cum: np.ndarray, cum_area: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``A(x) = integral_0^x g``: the walk's summed ``notional * distance`` after notional ``x``
    (the level completing ``x`` pro-rated); ``x`` must be <= ``cum[-1]``."""
    k = np.searchsorted(cum, x, side="left")
    before_n = np.where(k > 0, cum[np.maximum(k - 1, 0)], 0.0)
    before_a = np.where(k > 0, cum_area[np.maximum(k - 1, 0)], 0.0)
    return before_a + (x - before_n) * dist[np.minimum(k, dist.size - 1)]


def _depth_within(dist: np.ndarray, cum: np.ndarray, bps: float) -> float:
    k = int(np.searchsorted(dist, bps * (1 + 1e-9), side="right"))
    return float(cum[k - 1]) if k else 0.0


def calibrate_depth_model(
    views: Sequence[BookView],
    ref: MarketConditions,
    law: ScalingLaw | str = ScalingLaw.INVARIANCE,
    complete_within_bps: float = COMPLETE_WITHIN_BPS,
    every_s: float | None = None,
) -> DepthModel:
    """Average modelled book of ``views`` (one instrument) relative to ``ref`` (module docstring).

    ``ref``: the instrument's ``MarketConditions`` when the books were recorded (``conditions_at``
    the first view's time). ``complete_within_bps``: the distance within which every view is known
    to be complete; the model's depth ends at the smallest depth any view holds there. ``every_s``
    (optional) only goes into ``model_source``. Raises ``InvalidInputError`` for no views, views of
    several instruments, a crossed view, a view whose side ends inside ``complete_within_bps`` (the
    depth there is unknown) or too little depth for two knots; ``BookNotReadyError`` for an empty side.
    """
    if not views:
        raise InvalidInputError("calibrate_depth_model needs at least one BookView")
    insts = {v.instrument for v in views}
    if len(insts) != 1:
        raise InvalidInputError(
            f"calibrate_depth_model needs views of one instrument; got {sorted(map(str, insts))}"
        )
    (inst,) = insts
    law = ScalingLaw(law)
    within = check_number("complete_within_bps", complete_within_bps, unit="bps")
    walks: dict[Side, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {Side.BUY: [], Side.SELL: []}
    half, cap = [], math.inf
    for v in views:
        mid, _ = exact_mid(v)
        if v.bid_prices[0] >= v.ask_prices[0]:
            raise InvalidInputError(f"{inst} book at {v.book_ts_iso} is crossed; it cannot calibrate a model")
        for side in (Side.BUY, Side.SELL):
            w = _side_walk(v, side, mid)
            if w[0][-1] < within:
                name = "ask" if side is Side.BUY else "bid"
                raise InvalidInputError(
                    f"{inst} book at {v.book_ts_iso}: the visible {name} side ends {w[0][-1]:.2f} bps from mid, "
                    f"inside complete_within_bps={within:g}, so the depth there is unknown"
                )
            walks[side].append(w)
            cap = min(cap, _depth_within(w[0], w[1], within))
        half.append((float(v.ask_prices[0]) - float(v.bid_prices[0])) / 2 / mid * BPS)
    qv = ref.quote_volume_24h
    x = MIN_KNOT_FRAC * qv * 10.0 ** (np.arange(0, 64) / KNOTS_PER_DECADE)
    x = x[x < cap * 0.95]
    if x.size < 1:
        raise InvalidInputError(
            f"{inst}: the thinnest view holds {cap:,.0f} quote units within {within:g} bps, less than the first "
            f"knot ({MIN_KNOT_FRAC:g} x 24 h quote volume {qv:,.0f})"
        )
    knots = np.concatenate((x, [cap]))
    widths = np.diff(np.concatenate(([0.0], knots)))
    dists = {}
    for side, ws in walks.items():
        areas = np.mean([_area(d, c, a, knots) for d, c, a in ws], axis=0)
        dists[side] = np.maximum.accumulate(np.diff(np.concatenate(([0.0], areas))) / widths)
    start, end = _span(views)
    every = f", one every {every_s:g} s of book time" if every_s else ""
    return DepthModel(
        venue=inst.venue,
        symbol=inst.symbol,
        depth_frac=tuple(float(k / qv) for k in knots),
        bid_distance_bps=tuple(float(d) for d in dists[Side.SELL]),
        ask_distance_bps=tuple(float(d) for d in dists[Side.BUY]),
        complete_within_bps=within,
        half_spread_bps=float(np.mean(half)),
        ref=ref,
        n_books=len(views),
        books_start=start,
        books_end=end,
        scaling=law,
        model_source=f"calibrated on {len(views)} {inst} books ({start} to {end}{every})",
    )


def _span(views: Sequence[BookView]) -> tuple[str | None, str | None]:
    ts = [v.book_ts_iso for v in views if v.book_ts_ns is not None]
    return (min(ts), max(ts)) if ts else (None, None)


# -------------------------------------------------------------------------------------- walk


def _levels(model: DepthModel, side: Side) -> tuple[np.ndarray, np.ndarray]:
    """``(distance_bps, cumulative notional at mid)`` of the reference book's levels, best first."""
    d = np.asarray(model.ask_distance_bps if side is Side.BUY else model.bid_distance_bps, dtype=float)
    return d, np.asarray(model.depth_frac, dtype=float) * model.ref.quote_volume_24h


def depth_slippage_bps(
    model: DepthModel,
    side: Side | str,
    notional: np.ndarray | Sequence[float] | float,
    size_factor: np.ndarray | float = 1.0,
    cost_factor: np.ndarray | float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """VWAP slippage vs mid (bps, positive = cost) of orders of ``notional`` quote units at mid
    (``size * mid``) on the model book, and whether each walked past the last knot (extrapolated).

    ``size_factor`` / ``cost_factor`` (``scale_factors``) carry the reference book to other
    conditions: ``cost_factor * walk(notional * size_factor)``; arrays broadcast. The walk is the
    level walk of the module docstring. Raises ``InvalidInputError`` for a notional <= 0.
    """
    side = Side.parse(side)
    n, a, b = np.broadcast_arrays(
        np.asarray(notional, dtype=float),
        np.asarray(size_factor, dtype=float),
        np.asarray(cost_factor, dtype=float),
    )
    if np.any(~np.isfinite(n)) or np.any(n <= 0):
        raise InvalidInputError("each notional must be a finite number > 0 (quote units at mid)")
    d, cum = _levels(model, side)
    q = n * a  # notional in the reference book
    inside = q <= cum[-1] * (1 + 1e-12)
    cum_area = np.cumsum(np.diff(np.concatenate(([0.0], cum))) * d)
    area_in = _area(d, cum, cum_area, np.minimum(q, cum[-1]))
    # past the last knot: distance grows from d[-1] at the slope between the last two level midpoints
    if d.size >= 2:
        mids = (np.concatenate(([0.0], cum[:-1])) + cum) / 2
        slope = (d[-1] - d[-2]) / (mids[-1] - mids[-2])
    else:
        slope = d[-1] / cum[-1]
    extra = np.maximum(q - cum[-1], 0.0)
    area = area_in + extra * d[-1] + slope * extra**2 / 2
    return b * area / q, ~inside


def modelled_book(
    model: DepthModel,
    instrument,
    mid_price: float,
    size_factor: float = 1.0,
    cost_factor: float = 1.0,
    ts_ns: int | None = None,
) -> BookView:
    """The model book at ``mid_price`` and the given scale factors as a ``BookView``: each level at
    ``mid * (1 -/+ cost_factor * distance / 1e4)`` holding ``notional / size_factor / mid`` base units
    (module docstring). The ``market_impact`` VWAP on it is ``mid_price * (1 +/- depth_slippage_bps /
    1e4)`` for orders within the modelled depth (its own mid, best bid + best ask over 2, differs
    from ``mid_price`` when the first levels' distances differ per side). ``instrument``: the ``InstrumentId`` to label it with. Raises
    ``InvalidInputError`` for a mid or factor <= 0.
    """
    mid = check_number("mid_price", mid_price, unit="quote units")
    a = check_number("size_factor", size_factor)
    b = check_number("cost_factor", cost_factor)
    out = {}
    for side in (Side.BUY, Side.SELL):
        d, cum = _levels(model, side)
        sizes = np.diff(np.concatenate(([0.0], cum))) / a / mid
        sign = 1.0 if side is Side.BUY else -1.0
        out[side] = (mid * (1 + sign * b * d / BPS), sizes)
    return BookView(
        instrument=instrument,
        bid_prices=out[Side.SELL][0],
        bid_sizes=out[Side.SELL][1],
        ask_prices=out[Side.BUY][0],
        ask_sizes=out[Side.BUY][1],
        ts_event_ns=ts_ns,
        quality={"modelled": True, "model_source": model.model_source},
    )


# -------------------------------------------------------------------------------- validation


def validate_depth_model(
    model: DepthModel,
    views: Sequence[BookView],
    conditions: MarketConditions,
    notionals: Sequence[float] = VALIDATION_NOTIONALS,
    sides: Sequence[Side | str] = (Side.BUY, Side.SELL),
    label: str = "validation",
) -> ModelValidation:
    """Slippage error of ``model`` at ``conditions`` against each real view (module docstring).

    For each side and notional: the model's slippage (one number: the order is ``notional`` at mid
    on the modelled book) vs ``impact_curve`` on every view for ``size = notional / mid``.
    Raises ``InvalidInputError`` for no views, views of several instruments or a bad notional, and
    ``InsufficientLiquidityError`` if a view cannot fill a size (the comparison would be wrong).
    """
    if not views:
        raise InvalidInputError("validate_depth_model needs at least one real BookView")
    insts = {v.instrument for v in views}
    if len(insts) != 1:
        raise InvalidInputError(
            f"validate_depth_model needs views of one instrument; got {sorted(map(str, insts))}"
        )
    (inst,) = insts
    amounts = np.array([check_number("each notional", x, unit="quote units") for x in notionals], dtype=float)
    if amounts.size == 0:
        raise InvalidInputError("notionals must be a non-empty sequence of quote amounts > 0")
    size_factor, cost_factor = (
        float(x)
        for x in scale_factors(
            model.ref, conditions.quote_volume_24h, conditions.volatility_24h_bps, model.scaling
        )
    )
    mids = np.array([exact_mid(v)[0] for v in views])
    points = []
    for side_s in sides:
        side = Side.parse(side_s)
        pred, _ = depth_slippage_bps(model, side, amounts, size_factor, cost_factor)
        real = np.empty((len(views), amounts.size))
        for j, v in enumerate(views):
            curve = impact_curve(v, side, sizes=list(amounts / mids[j]))
            for i, p in enumerate(curve.points):
                if not p.fully_filled:
                    raise InsufficientLiquidityError(
                        f"{inst} book at {v.book_ts_iso} cannot fill {amounts[i]:,.0f} quote of {side.value}; "
                        "validate with smaller notionals"
                    )
                real[j, i] = p.slippage_bps
        for i, x in enumerate(amounts):
            err = pred[i] - real[:, i]
            points.append(
                ErrorPoint(
                    side=side,
                    notional=float(x),
                    n_books=len(views),
                    model_slippage_bps=float(pred[i]),
                    real_slippage_bps_mean=float(real[:, i].mean()),
                    real_slippage_bps_min=float(real[:, i].min()),
                    real_slippage_bps_max=float(real[:, i].max()),
                    error_bps_mean=float(err.mean()),
                    abs_error_bps_mean=float(np.abs(err).mean()),
                    abs_error_bps_max=float(np.abs(err).max()),
                )
            )
    start, end = _span(views)
    return ModelValidation(
        label=label,
        model_source=model.model_source,
        calibrated_on=model.calibrated_on,
        target=str(inst),
        scaling=model.scaling,
        n_books=len(views),
        books_start=start,
        books_end=end,
        conditions=conditions,
        size_factor=size_factor,
        cost_factor=cost_factor,
        points=tuple(points),
        mean_abs_error_bps=float(np.mean([p.abs_error_bps_mean for p in points])),
        max_abs_error_bps=float(np.max([p.abs_error_bps_max for p in points])),
    )


# ------------------------------------------------------------------------------ model set


def build_model_set(
    books: Mapping[str, Sequence[BookView]],
    candles: Mapping[str, pd.DataFrame],
    calibration_fraction: float = 0.5,
    notionals: Sequence[float] = VALIDATION_NOTIONALS,
    law: ScalingLaw | str = ScalingLaw.INVARIANCE,
    every_s: float | None = None,
) -> BookModelSet:
    """Calibrate, validate and cross-validate a model per asset with recorded books.

    ``books``: unified symbol -> its views in time order (one instrument each); ``candles``: symbol ->
    its candle frame covering the books' time with >= 24 h before. Per symbol, the first
    ``calibration_fraction`` of the views calibrate (conditions at the first of them), the rest
    validate out of sample (conditions at the first of them); every calibrated model also predicts
    every other symbol's out-of-sample views at that symbol's conditions (``cross``, label
    ``"<target> predicted from <ref> (out of sample)"``). Each model's ``error`` is its
    out-of-sample validation.

    Raises ``InvalidInputError`` for no books, a symbol without candles, a fraction outside (0, 1)
    or fewer than 2 views of a symbol; errors of the functions it calls otherwise.
    """
    if not books:
        raise InvalidInputError("build_model_set needs books of at least one symbol")
    frac = check_number("calibration_fraction", calibration_fraction)
    if frac >= 1:
        raise InvalidInputError(f"calibration_fraction must be in (0, 1); got {calibration_fraction!r}")
    parts: dict[str, tuple[list[BookView], list[BookView], MarketConditions, MarketConditions]] = {}
    for sym, views in books.items():
        if sym not in candles:
            raise InvalidInputError(f"no candles for {sym}; candles given for {sorted(candles)}")
        views = list(views)
        cut = int(len(views) * frac)
        if cut < 1 or cut >= len(views):
            raise InvalidInputError(f"{sym}: {len(views)} views cannot be split {frac:g} / {1 - frac:g}")
        cal, val = views[:cut], views[cut:]
        src = f"{sym} candles"
        c_cal = conditions_at(candles[sym], pd.Timestamp(cal[0].book_ts_ns, unit="ns", tz="UTC"), src)
        c_val = conditions_at(candles[sym], pd.Timestamp(val[0].book_ts_ns, unit="ns", tz="UTC"), src)
        parts[sym] = (cal, val, c_cal, c_val)
    models, ins, outs, cross = [], [], [], []
    for cal, val, c_cal, c_val in parts.values():
        m = calibrate_depth_model(cal, c_cal, law, every_s=every_s)
        ins.append(validate_depth_model(m, cal, c_cal, notionals, label="in-sample"))
        oos = validate_depth_model(m, val, c_val, notionals, label="out-of-sample")
        outs.append(oos)
        models.append(
            m.model_copy(update={"error": oos, "model_source": f"{m.model_source}; {_error_text(oos)}"})
        )
    for m in models:
        for sym, (_, val, _, c_val) in parts.items():
            if sym != m.symbol:
                cross.append(
                    validate_depth_model(
                        m, val, c_val, notionals, label=f"{sym} predicted from {m.symbol} (out of sample)"
                    )
                )
    return BookModelSet(
        models=tuple(models), in_sample=tuple(ins), out_of_sample=tuple(outs), cross=tuple(cross)
    )

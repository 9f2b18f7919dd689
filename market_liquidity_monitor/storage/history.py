"""History queries the assistant tools and the API use: candles, realised volatility, trend, resampling.

Pure functions (``resample_candles``, ``resample_trades``, ``realised_volatility_of``, ``trend_of``)
work on DataFrames/arrays; ``History`` runs them over stored data. Times: ``start``/``end`` accept
epoch milliseconds, ``datetime``/``pd.Timestamp`` (naive = UTC) or ISO text; windows are
half-open ``[start, end)`` on the candle open time.

Frames returned by ``History.candles``: columns ``ts`` (pandas UTC timestamp of the open), ``ts_ms``,
``open``, ``high``, ``low``, ``close``, ``volume`` (base units), oldest first; ``df.attrs`` holds
``venue``, ``symbol``, ``timeframe`` and ``source_timeframe`` (the stored timeframe it was resampled
from, equal to ``timeframe`` when stored as such).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from market_liquidity_monitor.domain.errors import InvalidInputError, MLMError
from market_liquidity_monitor.lazy import lazy_module
from market_liquidity_monitor.storage.timeframes import periods_per_year, timeframe_ms, timeframe_seconds

if TYPE_CHECKING:
    from market_liquidity_monitor.storage.db import Database

pd = lazy_module("pandas")  # imported on first use: a book question never needs it
# The queries (SQLAlchemy) load with the first one: volatility and trend helpers, and the services
# that import them, do not need a database.
_repo = lazy_module("market_liquidity_monitor.storage.repositories")

TimeLike = Union[int, float, str, datetime, "pd.Timestamp", None]  # "pd.Timestamp": pandas loads on first use

_WEEK_OFFSET_MS = 4 * 86_400_000  # 1970-01-01 was a Thursday; weekly candles open on Monday 00:00 UTC
_CANDLE_COLUMNS = ["ts", "ts_ms", "open", "high", "low", "close", "volume"]

VOLATILITY_FORMULA = (
    "r_i = ln(C_i / C_(i-1)) over consecutive candle closes; "
    "sigma_period = sample standard deviation of r_i (ddof = 1); "
    "sigma_annual = sigma_period * sqrt(P), P = 365 * 86400 / timeframe_seconds periods per year "
    "(crypto trades 24/7: P = 105,120 for 5m, 8,760 for 1h, 365 for 1d)"
)
TREND_FORMULA = (
    "return_pct = (C_last / C_first - 1) * 100; ordinary least squares of ln(C) on time in days gives "
    "slope b: slope_pct_per_day = (exp(b) - 1) * 100 (compounded drift), r_squared of that fit; "
    "slope_per_day = OLS slope of C on time in days (quote units per day)"
)


class NoHistoryError(MLMError, LookupError):
    """No stored data for the request; ``available`` lists what is stored for the venue/symbol."""

    def __init__(self, message: str, available: list[dict[str, Any]] | None = None):
        self.available = available or []
        if self.available:
            shown = "; ".join(
                f"{a['venue']} {a['symbol']} {a['timeframe']} "
                f"{_fmt_ms(a['first_ts_ms'])} -> {_fmt_ms(a['last_ts_ms'])} ({a['count']} candles)"
                for a in self.available[:10]
            )
            message = f"{message} Stored: {shown}."
        super().__init__(message)


class InsufficientHistoryError(MLMError):
    """Too few data points for the statistic (e.g. fewer than 3 candles for a volatility)."""


def to_ms(value: TimeLike) -> int | None:
    """Epoch milliseconds of a time-like value (None stays None). Naive datetimes are UTC."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidInputError(f"Invalid time {value!r}")
    if isinstance(value, int | float | np.integer | np.floating):
        return int(value)
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(f"Invalid time {value!r}: use epoch ms, a datetime or ISO text.") from exc
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return int(ts.value // 1_000_000)


def _fmt_ms(ms: int | None) -> str:
    return "-" if ms is None else pd.Timestamp(ms, unit="ms", tz="UTC").strftime("%Y-%m-%d %H:%M")


def bucket_start_ms(ts_ms: np.ndarray, timeframe: str) -> np.ndarray:
    """Open time of the ``timeframe`` candle containing each time (UTC, epoch-aligned; weeks open on Monday)."""
    step = timeframe_ms(timeframe)
    ts_ms = np.asarray(ts_ms, dtype="int64")
    if timeframe.endswith("w"):
        return (ts_ms - _WEEK_OFFSET_MS) // step * step + _WEEK_OFFSET_MS
    return ts_ms // step * step


def candles_frame(rows: list[tuple] | np.ndarray) -> pd.DataFrame:
    """``[(ts_ms, o, h, l, c, v), ...]`` -> a candles frame (see the module doc)."""
    df = pd.DataFrame(rows, columns=["ts_ms", "open", "high", "low", "close", "volume"])
    df["ts_ms"] = df["ts_ms"].astype("int64")
    for c in ("open", "high", "low", "close", "volume"):
        df[c] = df[c].astype("float64")
    df.insert(0, "ts", pd.to_datetime(df["ts_ms"], unit="ms", utc=True))
    return df[_CANDLE_COLUMNS]


# -- resampling -------------------------------------------------------------------------------
def resample_candles(
    df: pd.DataFrame, source_timeframe: str, target_timeframe: str, *, drop_incomplete: bool = False
) -> pd.DataFrame:
    """Aggregate finer candles into ``target_timeframe`` candles: open = first open, high = max,
    low = min, close = last close, volume = sum. ``target`` must be a whole multiple of ``source``
    (else ``InvalidInputError``). ``drop_incomplete`` drops buckets missing source candles (e.g. the
    current, unfinished hour)."""
    src_ms, dst_ms = timeframe_ms(source_timeframe), timeframe_ms(target_timeframe)
    if dst_ms % src_ms != 0 or dst_ms < src_ms:
        raise InvalidInputError(
            f"Cannot resample {source_timeframe} candles to {target_timeframe}: the target must be a whole"
            f" multiple of the source."
        )
    if df.empty:
        return candles_frame([])
    bucket = bucket_start_ms(df["ts_ms"].to_numpy(), target_timeframe)
    g = df.assign(_b=bucket).groupby("_b", sort=True)
    out = g.agg(
        open=("open", "first"),
        high=("high", "max"),
        low=("low", "min"),
        close=("close", "last"),
        volume=("volume", "sum"),
        n=("open", "size"),
    )
    if drop_incomplete:
        out = out[out["n"] == dst_ms // src_ms]
    out = out.drop(columns="n").reset_index(names="ts_ms")
    return candles_frame(out[["ts_ms", "open", "high", "low", "close", "volume"]].to_numpy())


def resample_trades(trades: pd.DataFrame, timeframe: str, *, fill_gaps: bool = False) -> pd.DataFrame:
    """OHLCV candles from trades (columns ``ts_event_ns``, ``price``, ``size``), e.g. 1s, 1m, 5m, 1h.

    open/close = first/last trade price in the bucket (by time, then input order), high/low = max/min,
    volume = sum of sizes, plus ``trades`` = count. Buckets without trades are omitted, or with
    ``fill_gaps`` carried forward at the previous close with volume 0.
    """
    timeframe_seconds(timeframe)  # validates
    if trades.empty:
        out = candles_frame([])
        out["trades"] = pd.Series(dtype="int64")
        return out
    df = trades[["ts_event_ns", "price", "size"]].copy()
    df = df.sort_values("ts_event_ns", kind="stable")
    df["_b"] = bucket_start_ms(df["ts_event_ns"].to_numpy(dtype="int64") // 1_000_000, timeframe)
    g = df.groupby("_b", sort=True)
    out = g.agg(
        open=("price", "first"),
        high=("price", "max"),
        low=("price", "min"),
        close=("price", "last"),
        volume=("size", "sum"),
        trades=("price", "size"),
    )
    if fill_gaps and len(out) > 1:
        step = timeframe_ms(timeframe)
        full = np.arange(out.index[0], out.index[-1] + step, step, dtype="int64")
        out = out.reindex(full)
        close = out["close"].ffill()
        for c in ("open", "high", "low"):
            out[c] = out[c].fillna(close)
        out["close"] = close
        out["volume"] = out["volume"].fillna(0.0)
        out["trades"] = out["trades"].fillna(0)
    out = out.reset_index(names="ts_ms")
    res = candles_frame(out[["ts_ms", "open", "high", "low", "close", "volume"]].to_numpy())
    res["trades"] = out["trades"].to_numpy(dtype="int64")
    return res


# -- statistics -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class VolatilityResult:
    """Realised volatility of close-to-close log returns (``formula`` says exactly how)."""

    venue: str
    symbol: str
    timeframe: str
    start_ms: int
    end_ms: int  # open time of the last candle used
    n_returns: int
    vol_period_pct: float  # standard deviation of one period's log return, in %
    vol_annualised_pct: float
    periods_per_year: float
    annualisation_factor: float  # sqrt(periods_per_year)
    gaps: int  # missing candles between consecutive ones (their returns span several periods)
    source_timeframe: str
    formula: str = VOLATILITY_FORMULA

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class TrendResult:
    """Return and regression slope over a window (``formula`` says exactly how)."""

    venue: str
    symbol: str
    timeframe: str
    start_ms: int
    end_ms: int
    n_candles: int
    first_close: float
    last_close: float
    return_pct: float
    slope_per_day: float  # quote units per day (OLS of close on time)
    slope_pct_per_day: float  # compounded % per day (OLS of ln close on time)
    r_squared: float  # of the log-price fit
    direction: str  # "up" | "down" | "flat" (|slope_pct_per_day| < 0.01)
    source_timeframe: str
    formula: str = TREND_FORMULA

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def realised_volatility_of(closes: np.ndarray, timeframe: str) -> tuple[float, float, int]:
    """``(sigma_period, sigma_annualised, n_returns)`` as fractions (not %), see ``VOLATILITY_FORMULA``.
    Raises ``InsufficientHistoryError`` with fewer than 3 closes, ``InvalidInputError`` for
    non-positive prices."""
    closes = np.asarray(closes, dtype="float64")
    if len(closes) < 3:
        raise InsufficientHistoryError(
            f"Realised volatility needs at least 3 candles (2 returns); got {len(closes)}."
        )
    if np.any(closes <= 0) or not np.all(np.isfinite(closes)):
        raise InvalidInputError("Closes must be finite and > 0 to take log returns.")
    r = np.diff(np.log(closes))
    sigma = float(np.std(r, ddof=1))
    return sigma, sigma * math.sqrt(periods_per_year(timeframe)), len(r)


def trend_of(ts_ms: np.ndarray, closes: np.ndarray) -> dict[str, float]:
    """Trend statistics (see ``TREND_FORMULA``): ``return_pct``, ``slope_per_day``,
    ``slope_pct_per_day``, ``r_squared``. Raises ``InsufficientHistoryError`` below 2 points."""
    closes = np.asarray(closes, dtype="float64")
    t_days = (
        (np.asarray(ts_ms, dtype="float64") - float(ts_ms[0])) / 86_400_000.0 if len(ts_ms) else np.array([])
    )
    if len(closes) < 2 or t_days[-1] <= 0:
        raise InsufficientHistoryError(
            f"A trend needs at least 2 candles at different times; got {len(closes)}."
        )
    if np.any(closes <= 0):
        raise InvalidInputError("Closes must be > 0 for a log-price trend.")
    y = np.log(closes)
    tm = t_days.mean()
    dt = t_days - tm
    sxx = float(np.dot(dt, dt))
    b_log = float(np.dot(dt, y - y.mean()) / sxx)
    b_lin = float(np.dot(dt, closes - closes.mean()) / sxx)
    fitted = y.mean() + b_log * dt
    ss_res = float(np.sum((y - fitted) ** 2))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 0.0
    return {
        "return_pct": (closes[-1] / closes[0] - 1.0) * 100.0,
        "slope_per_day": b_lin,
        "slope_pct_per_day": (math.exp(b_log) - 1.0) * 100.0,
        "r_squared": r2,
    }


# -- stored history -----------------------------------------------------------------------------
class History:
    """History queries over a ``Database``. Build once and pass in."""

    def __init__(self, db: Database):
        self.db = db

    async def coverage(self, venue: str | None = None, symbol: str | None = None) -> list[dict[str, Any]]:
        """Stored candle series: ``[{venue, symbol, timeframe, first_ts_ms, last_ts_ms, count}]``."""
        async with self.db.engine.connect() as conn:
            return await _repo.candle_coverage(conn, venue, symbol)

    async def candles(
        self,
        symbol: str,
        venue: str,
        timeframe: str,
        start: TimeLike = None,
        end: TimeLike = None,
        *,
        resample: bool = True,
        limit: int | None = None,
    ) -> pd.DataFrame:
        """Candles of ``symbol`` on ``venue`` in ``[start, end)``, oldest first (frame described in the
        module doc). When ``timeframe`` is not stored and ``resample`` is on, the coarsest stored
        timeframe that divides it is resampled (e.g. 15m from 5m, 4h from 1h). Raises
        ``NoHistoryError`` (listing what is stored) when nothing matches."""
        step = timeframe_ms(timeframe)
        start_ms, end_ms = to_ms(start), to_ms(end)
        async with self.db.engine.connect() as conn:
            rows = await _repo.fetch_candles(conn, venue, symbol, timeframe, start_ms, end_ms, limit)
            source = timeframe
            stored: list[dict[str, Any]] | None = None
            if not rows and resample:
                stored = await _repo.candle_coverage(conn, venue, symbol)
                finer = sorted(
                    (timeframe_ms(s["timeframe"]), s["timeframe"])
                    for s in stored
                    if _valid_tf(s["timeframe"])
                    and step % timeframe_ms(s["timeframe"]) == 0
                    and timeframe_ms(s["timeframe"]) < step
                )
                lo = None if start_ms is None else int(bucket_start_ms(np.array([start_ms]), timeframe)[0])
                for _ms, tf in reversed(finer):  # coarsest usable first: fewest rows
                    rows = await _repo.fetch_candles(conn, venue, symbol, tf, lo, end_ms)
                    if rows:
                        source = tf
                        break
            if not rows:
                available = stored if stored is not None else await _repo.candle_coverage(conn, venue, symbol)
                if not available:
                    available = await _repo.candle_coverage(
                        conn, None, symbol
                    ) or await _repo.candle_coverage(conn, venue, None)
        if not rows:
            window = f" between {_fmt_ms(start_ms)} and {_fmt_ms(end_ms)}" if start_ms or end_ms else ""
            raise NoHistoryError(f"No {timeframe} candles for {symbol} on {venue}{window}.", available)
        df = candles_frame(rows)
        if source != timeframe:
            df = resample_candles(df, source, timeframe)
            if start_ms is not None:
                df = df[df["ts_ms"] >= start_ms].reset_index(drop=True)
            if limit is not None:
                df = df.head(limit)
        df.attrs.update(venue=venue, symbol=symbol, timeframe=timeframe, source_timeframe=source)
        return df

    async def trades(
        self, symbol: str, venue: str, start: TimeLike = None, end: TimeLike = None
    ) -> pd.DataFrame:
        """Stored trades in ``[start, end)``: columns ``ts_event_ns, price, size, side, trade_id``."""
        start_ns = None if start is None else to_ms(start) * 1_000_000
        end_ns = None if end is None else to_ms(end) * 1_000_000
        async with self.db.engine.connect() as conn:
            rows = await _repo.fetch_trades(conn, venue, symbol, start_ns, end_ns)
        df = pd.DataFrame(rows, columns=["ts_event_ns", "price", "size", "side", "trade_id"])
        df.attrs.update(venue=venue, symbol=symbol)
        return df

    async def candles_from_trades(
        self,
        symbol: str,
        venue: str,
        timeframe: str,
        start: TimeLike = None,
        end: TimeLike = None,
        *,
        fill_gaps: bool = False,
    ) -> pd.DataFrame:
        """OHLCV resampled from stored trades (``resample_trades``). Raises ``NoHistoryError``."""
        trades = await self.trades(symbol, venue, start, end)
        if trades.empty:
            raise NoHistoryError(f"No stored trades for {symbol} on {venue}.")
        df = resample_trades(trades, timeframe, fill_gaps=fill_gaps)
        df.attrs.update(venue=venue, symbol=symbol, timeframe=timeframe, source_timeframe="trades")
        return df

    async def realised_volatility(
        self, symbol: str, venue: str, timeframe: str = "1h", start: TimeLike = None, end: TimeLike = None
    ) -> VolatilityResult:
        """Annualised realised volatility of ``timeframe`` close-to-close log returns in the window
        (``volatility_of_candles``). Raises ``NoHistoryError``, ``InsufficientHistoryError``."""
        return volatility_of_candles(await self.candles(symbol, venue, timeframe, start, end))

    async def trend(
        self, symbol: str, venue: str, timeframe: str = "1h", start: TimeLike = None, end: TimeLike = None
    ) -> TrendResult:
        """Return % and regression slopes of closes in the window (``trend_of_candles``).
        Raises ``NoHistoryError``, ``InsufficientHistoryError``."""
        return trend_of_candles(await self.candles(symbol, venue, timeframe, start, end))


def volatility_of_candles(df: pd.DataFrame) -> VolatilityResult:
    """Annualised realised volatility of a frame from ``History.candles`` (its ``attrs`` name the
    venue, symbol, timeframe and source timeframe): ``timeframe`` close-to-close log returns,
    formula in ``VOLATILITY_FORMULA``. Raises ``InsufficientHistoryError`` for too few closes."""
    venue, symbol, timeframe = df.attrs["venue"], df.attrs["symbol"], df.attrs["timeframe"]
    sigma, sigma_ann, n = realised_volatility_of(df["close"].to_numpy(), timeframe)
    ppy = periods_per_year(timeframe)
    step = timeframe_ms(timeframe)
    gaps = int(np.sum(np.diff(df["ts_ms"].to_numpy()) // step - 1))
    return VolatilityResult(
        venue=venue,
        symbol=symbol,
        timeframe=timeframe,
        start_ms=int(df["ts_ms"].iloc[0]),
        end_ms=int(df["ts_ms"].iloc[-1]),
        n_returns=n,
        vol_period_pct=sigma * 100.0,
        vol_annualised_pct=sigma_ann * 100.0,
        periods_per_year=ppy,
        annualisation_factor=math.sqrt(ppy),
        gaps=max(gaps, 0),
        source_timeframe=df.attrs["source_timeframe"],
    )


def trend_of_candles(df: pd.DataFrame) -> TrendResult:
    """Return % and regression slopes of the closes of a frame from ``History.candles`` (formula
    in ``TREND_FORMULA``). Raises ``InsufficientHistoryError`` for too few closes."""
    stats = trend_of(df["ts_ms"].to_numpy(), df["close"].to_numpy())
    pct = stats["slope_pct_per_day"]
    direction = "flat" if abs(pct) < 0.01 else ("up" if pct > 0 else "down")
    return TrendResult(
        venue=df.attrs["venue"],
        symbol=df.attrs["symbol"],
        timeframe=df.attrs["timeframe"],
        start_ms=int(df["ts_ms"].iloc[0]),
        end_ms=int(df["ts_ms"].iloc[-1]),
        n_candles=len(df),
        first_close=float(df["close"].iloc[0]),
        last_close=float(df["close"].iloc[-1]),
        return_pct=stats["return_pct"],
        slope_per_day=stats["slope_per_day"],
        slope_pct_per_day=pct,
        r_squared=stats["r_squared"],
        direction=direction,
        source_timeframe=df.attrs["source_timeframe"],
    )


def _valid_tf(tf: str) -> bool:
    try:
        timeframe_seconds(tf)
    except InvalidInputError:
        return False
    return True

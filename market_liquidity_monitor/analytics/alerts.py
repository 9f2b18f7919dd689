"""User-defined alert rules on liquidity metrics, their evaluation, and liquidity-crunch detection.

Pure: no I/O, no clocks, no framework imports. Times are ns since the Unix epoch (``ts_ns``).

Observations
------------
An :class:`Observation` is what was measured on one book (``venue``, ``symbol``) at one time
``ts_ns``: a flat mapping of raw values (missing key or None = not measured):

- ``mid_price`` (quote units), ``spread_bps`` (as :func:`~.liquidity.top_of_book`);
- for each sampled window ``W`` bps: ``depth_bid_size@W``, ``depth_ask_size@W`` (base units) and
  ``depth_bid_notional@W``, ``depth_ask_notional@W`` (quote units), as
  :func:`~.liquidity.depth_within_bps` (``W`` written with ``:g``: ``50``, ``12.5``; see
  :func:`depth_key`);
- ``trade_volume``: base units traded on the book since its previous observation (0 if none);
- optionally ``pair_spread``: a spread supplied by the caller (e.g. the log spread
  ``log a - beta log b`` of :mod:`~.pairs`) for z-score rules.

:func:`sample_observation` builds one from a :class:`~market_liquidity_monitor.book.view.BookView`.

Metrics a rule can watch (value at observation ``t`` of one book's series)
---------------------------------------------------------------------------
- ``mid_price``, ``spread_bps``: as observed.
- ``depth_notional`` / ``depth_size`` (``window_bps``, ``side`` = both | bid | ask): resting quote
  notional / base size within ``window_bps`` of mid; ``both`` = bid + ask.
- ``imbalance`` (``window_bps``): ``(bid_size - ask_size) / (bid_size + ask_size)`` in [-1, 1], the
  same definition as :func:`~.liquidity.imbalance`; None when the window is empty.
- ``zscore`` (``lookback`` N, ``source`` = mid_price | spread_bps | pair_spread): the rolling
  z-score ``z_t = (x_t - mean(x_{t-N+1..t})) / std(x_{t-N+1..t})`` with the sample std (ddof=1),
  the definition :mod:`~.pairs` uses (pandas ``rolling``). With ``source="mid_price"`` it is
  "mid vs its rolling mean"; with ``pair_spread`` it is the pairs-trading signal. None for the
  first N-1 observations, when a value in the window is missing, or when the std is 0.
- ``volume`` (``period_s``): traded base volume over the trailing period,
  ``sum(trade_volume_i for ts_i in (t - period_s, t])``; None until the series spans the period
  (its first observation is at or before ``t - period_s``), so a young series never looks "quiet".
- ``volatility`` (``lookback`` N): realised volatility of the mid over the last N log returns,
  ``sqrt(sum r_i^2) * 1e4`` in bps over that window (not annualised; realised variance as in
  Andersen & Bollerslev 1998, "Answering the skeptics: yes, standard volatility models do provide
  accurate forecasts"). None until N returns exist or when a mid in the window is missing.

Comparisons and firing
----------------------
- ``above``: ``value > threshold``; ``below``: ``value < threshold``;
- ``crosses_above``: ``prev <= threshold < value``; ``crosses_below``: ``prev >= threshold > value``;
  ``crosses``: either; ``prev`` is the metric's previous known value on the same book.

A missing value (None) never fires and neither clears nor breaks a crossing. A rule fires at ``t``
when its condition holds and no event of that rule on that book fired within the last
``cooldown_s`` (``ts_t - ts_last_fire < cooldown_s * 1e9`` suppresses it). ``rearm`` chooses what
happens while the condition keeps holding:

- ``cooldown`` (default): fire again at the first observation at least ``cooldown_s`` after the
  last event (a level alert, rate-limited);
- ``clear``: after firing, stay silent until the condition has been false at least once (a known
  value that does not meet it); then fire again, cooldown permitting (one event per episode).

A rule without a venue applies to every venue's book of its symbol, each with its own state.

Liquidity crunches
------------------
:func:`detect_liquidity_crunches` looks for depth falling well below its rolling baseline: the
baseline at ``t`` is the median of the ``baseline_n`` observations before ``t`` (``t`` excluded);
an episode starts (``onset``) at the first ``t`` with ``depth_t < drop_ratio * baseline_t``. The
baseline is then frozen at its onset value (so a long crunch does not lower its own yardstick); the
episode recovers at the first later ``t`` with ``depth_t >= recovery_ratio * baseline`` (hysteresis:
``recovery_ratio >= drop_ratio``), or is open (``recovery_ts_ns`` None). The trough is the minimum
depth from onset up to (not including) recovery; ``drop_pct = (1 - trough / baseline) * 100``.
With per-venue depth, each episode also gives the venue shares and the Herfindahl-Hirschman index
``HHI = sum s_i^2`` (:func:`~.venues.herfindahl`) at onset and at trough, and their change.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from enum import StrEnum
from numbers import Real
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from market_liquidity_monitor.analytics.liquidity import (
    Result,
    check_window,
    depth_within_bps,
    top_of_book,
)
from market_liquidity_monitor.analytics.venues import herfindahl
from market_liquidity_monitor.book.view import BookView
from market_liquidity_monitor.domain.errors import InvalidInputError
from market_liquidity_monitor.domain.time import iso_ns

__all__ = [
    "AlertEvaluator",
    "AlertEvent",
    "AlertMetric",
    "AlertRule",
    "Comparison",
    "CrunchEpisode",
    "DepthSide",
    "LiquidityCrunchReport",
    "Observation",
    "Rearm",
    "RuleState",
    "ZScoreSource",
    "depth_key",
    "detect_liquidity_crunches",
    "evaluate_rule",
    "evaluate_rules",
    "metric_values",
    "required_windows",
    "sample_observation",
]

BPS = 1e4
MAX_LOOKBACK = 100_000
NAME_MAX_LEN = 128  # the alerts.name column


class AlertMetric(StrEnum):
    MID_PRICE = "mid_price"
    SPREAD_BPS = "spread_bps"
    DEPTH_NOTIONAL = "depth_notional"
    DEPTH_SIZE = "depth_size"
    IMBALANCE = "imbalance"
    ZSCORE = "zscore"
    VOLUME = "volume"
    VOLATILITY = "volatility"


class Comparison(StrEnum):
    ABOVE = "above"
    BELOW = "below"
    CROSSES_ABOVE = "crosses_above"
    CROSSES_BELOW = "crosses_below"
    CROSSES = "crosses"


class Rearm(StrEnum):
    COOLDOWN = "cooldown"
    CLEAR = "clear"


class DepthSide(StrEnum):
    BOTH = "both"
    BID = "bid"
    ASK = "ask"


class ZScoreSource(StrEnum):
    MID_PRICE = "mid_price"
    SPREAD_BPS = "spread_bps"
    PAIR_SPREAD = "pair_spread"


_WINDOW_METRICS = (AlertMetric.DEPTH_NOTIONAL, AlertMetric.DEPTH_SIZE, AlertMetric.IMBALANCE)
_LOOKBACK_METRICS = (AlertMetric.ZSCORE, AlertMetric.VOLATILITY)
_CROSSING = (Comparison.CROSSES_ABOVE, Comparison.CROSSES_BELOW, Comparison.CROSSES)


def _enum(cls: type[StrEnum], name: str, value: Any) -> Any:
    if isinstance(value, cls):
        return value
    if isinstance(value, str):
        try:
            return cls(value.strip().lower())
        except ValueError:
            pass
    valid = ", ".join(m.value for m in cls)
    raise InvalidInputError(f"unknown {name} {value!r}; valid: {valid}")


def _finite(name: str, value: Any, unit: str = "") -> float:
    hint = f" ({unit})" if unit else ""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)):
        raise InvalidInputError(f"{name} must be a finite number{hint}; got {value!r}")
    return float(value)


def depth_key(side: str, unit: str, window_bps: float) -> str:
    """Observation key of one side's depth in one window: ``depth_{bid|ask}_{size|notional}@{W:g}``."""
    return f"depth_{side}_{unit}@{float(window_bps):g}"


@dataclass(frozen=True, slots=True)
class AlertRule:
    """One user rule. Build it with keywords; every field is checked in ``__post_init__``.

    ``symbol`` is the unified symbol of the book (``BTC/USDT``); ``venue`` a ccxt id or None for
    every venue. ``threshold`` is in the metric's unit (quote for mid/depth_notional, base for
    depth_size/volume, bps for spread/volatility, a pure number for imbalance/zscore).
    ``cooldown_s >= 0``. Metric parameters (only where they apply, else ``InvalidInputError``):
    ``window_bps`` (depth_*, imbalance; required), ``side`` (depth_*), ``lookback`` in observations
    (zscore >= 2, volatility >= 1; required), ``source`` (zscore), ``period_s`` (volume; required).
    ``name`` defaults to a description of the rule. ``id`` is set once the rule is stored.

    Raises ``InvalidInputError`` naming the bad field and what is valid (e.g. the metric names).
    """

    symbol: str
    metric: AlertMetric | str
    comparison: Comparison | str
    threshold: float
    venue: str | None = None
    name: str | None = None
    cooldown_s: float = 300.0
    rearm: Rearm | str = Rearm.COOLDOWN
    window_bps: float | None = None
    side: DepthSide | str | None = None
    lookback: int | None = None
    source: ZScoreSource | str | None = None
    period_s: float | None = None
    enabled: bool = True
    id: int | None = None

    def __post_init__(self) -> None:
        put = object.__setattr__
        if not isinstance(self.symbol, str) or not self.symbol.strip():
            raise InvalidInputError(
                f"symbol must be a non-empty unified symbol like 'BTC/USDT'; got {self.symbol!r}"
            )
        put(self, "symbol", self.symbol.strip().upper())
        if self.venue is not None:
            if not isinstance(self.venue, str) or not self.venue.strip():
                raise InvalidInputError(f"venue must be a ccxt id like 'binance' or None; got {self.venue!r}")
            put(self, "venue", self.venue.strip().lower())
        metric = _enum(AlertMetric, "metric", self.metric)
        put(self, "metric", metric)
        put(self, "comparison", _enum(Comparison, "comparison", self.comparison))
        put(self, "rearm", _enum(Rearm, "rearm", self.rearm))
        put(self, "threshold", _finite("threshold", self.threshold))
        cd = _finite("cooldown_s", self.cooldown_s, "seconds")
        if cd < 0:
            raise InvalidInputError(f"cooldown_s must be >= 0 seconds; got {self.cooldown_s!r}")
        put(self, "cooldown_s", cd)
        if not isinstance(self.enabled, bool):
            raise InvalidInputError(f"enabled must be true or false; got {self.enabled!r}")

        def only_for(attr: str, metrics: Sequence[AlertMetric]) -> None:
            if getattr(self, attr) is not None and metric not in metrics:
                raise InvalidInputError(
                    f"{attr} applies to metric {' / '.join(m.value for m in metrics)} only, "
                    f"not {metric.value}; leave it unset"
                )

        only_for("window_bps", _WINDOW_METRICS)
        only_for("side", (AlertMetric.DEPTH_NOTIONAL, AlertMetric.DEPTH_SIZE))
        only_for("lookback", _LOOKBACK_METRICS)
        only_for("source", (AlertMetric.ZSCORE,))
        only_for("period_s", (AlertMetric.VOLUME,))
        if metric in _WINDOW_METRICS:
            if self.window_bps is None:
                raise InvalidInputError(
                    f"metric {metric.value} needs window_bps (basis points of mid, e.g. 50)"
                )
            put(self, "window_bps", check_window(self.window_bps))
        if metric in (AlertMetric.DEPTH_NOTIONAL, AlertMetric.DEPTH_SIZE):
            put(self, "side", _enum(DepthSide, "side", self.side if self.side is not None else "both"))
        if metric is AlertMetric.IMBALANCE and not -1.0 <= self.threshold <= 1.0:
            raise InvalidInputError(f"an imbalance threshold must be in [-1, 1]; got {self.threshold!r}")
        if metric in _LOOKBACK_METRICS:
            least = 2 if metric is AlertMetric.ZSCORE else 1
            lb = self.lookback
            if isinstance(lb, bool) or not isinstance(lb, int) or not least <= lb <= MAX_LOOKBACK:
                raise InvalidInputError(
                    f"metric {metric.value} needs lookback, an integer number of observations in "
                    f"[{least}, {MAX_LOOKBACK}]; got {lb!r}"
                )
        if metric is AlertMetric.ZSCORE:
            put(
                self,
                "source",
                _enum(ZScoreSource, "source", self.source if self.source is not None else "mid_price"),
            )
        if metric is AlertMetric.VOLUME:
            if self.period_s is None:
                raise InvalidInputError("metric volume needs period_s (seconds of trailing volume, e.g. 60)")
            p = _finite("period_s", self.period_s, "seconds")
            if p <= 0:
                raise InvalidInputError(f"period_s must be > 0 seconds; got {self.period_s!r}")
            put(self, "period_s", p)
        if self.name is None:
            put(self, "name", self.describe()[:NAME_MAX_LEN])
        elif not isinstance(self.name, str) or not self.name.strip() or len(self.name) > NAME_MAX_LEN:
            raise InvalidInputError(f"name must be a non-empty string of at most {NAME_MAX_LEN} characters")

    def describe(self) -> str:
        """One line: ``"BTC/USDT@binance spread_bps above 5 (cooldown 300 s)"``."""
        where = f"{self.symbol}@{self.venue}" if self.venue else f"{self.symbol}@any venue"
        params = []
        if self.window_bps is not None:
            params.append(f"within {self.window_bps:g} bps")
        if self.side not in (None, DepthSide.BOTH):
            params.append(f"{self.side} side")
        if self.lookback is not None:
            params.append(f"lookback {self.lookback}")
        if self.source not in (None, ZScoreSource.MID_PRICE):
            params.append(f"of {self.source}")
        if self.period_s is not None:
            params.append(f"over {self.period_s:g} s")
        extra = f" ({', '.join(params)})" if params else ""
        return f"{where} {self.metric}{extra} {self.comparison} {self.threshold:g}"

    def params(self) -> dict[str, Any]:
        """The metric parameters and ``rearm`` (what ``storage`` keeps in ``alerts.params``)."""
        out: dict[str, Any] = {"rearm": str(self.rearm)}
        for k in ("window_bps", "side", "lookback", "source", "period_s"):
            v = getattr(self, k)
            if v is not None:
                out[k] = str(v) if isinstance(v, StrEnum) else v
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every field (enums as their values)."""
        return {
            f.name: (str(v) if isinstance(v, StrEnum) else v)
            for f in fields(self)
            if (v := getattr(self, f.name)) is not None or f.name in ("venue", "id")
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AlertRule:
        """A rule from a mapping of its fields; unknown keys raise ``InvalidInputError`` listing the valid ones."""
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise InvalidInputError(f"unknown alert rule field(s) {unknown}; valid: {', '.join(names)}")
        missing = [k for k in ("symbol", "metric", "comparison", "threshold") if k not in data]
        if missing:
            raise InvalidInputError(f"an alert rule needs {', '.join(missing)}")
        return cls(**dict(data))

    def matches(self, venue: str, symbol: str) -> bool:
        """Whether this rule watches the book ``venue``/``symbol``."""
        return self.symbol == symbol and (self.venue is None or self.venue == venue)


@dataclass(frozen=True, slots=True)
class Observation:
    """Raw values measured on one book at ``ts_ns`` (keys in the module docstring).

    ``ts_ns`` orders the book's series (a sampler uses its clock's "now"); ``book_ts_ns`` is the
    timestamp of the book that was measured, when known (venue time, else receive time).
    """

    ts_ns: int
    venue: str
    symbol: str
    values: Mapping[str, float | None] = field(default_factory=dict)
    book_ts_ns: int | None = None


class AlertEvent(Result):
    """One firing of a rule on one book."""

    id: int | None = None  # set once stored
    rule_id: int | None
    rule_name: str
    venue: str
    symbol: str
    metric: str
    comparison: str
    threshold: float
    value: float
    previous_value: float | None  # the metric's previous known value on this book
    ts_ns: int  # the observation's time (ns since epoch)
    ts: str  # ISO 8601 UTC
    book_ts_ns: int | None = None  # the measured book's own timestamp, when known
    book_ts: str | None = None
    message: str


@dataclass(frozen=True, slots=True)
class RuleState:
    """What a rule remembers about one book between evaluations."""

    last_fire_ns: int | None = None
    armed: bool = True
    last_value: float | None = None


def required_windows(rules: Iterable[AlertRule]) -> set[float]:
    """Depth windows (bps) the rules' observations must carry."""
    return {r.window_bps for r in rules if r.window_bps is not None}


def sample_observation(
    view: BookView,
    windows_bps: Iterable[float] = (),
    *,
    trade_volume: float = 0.0,
    ts_ns: int | None = None,
    extra: Mapping[str, float | None] | None = None,
) -> Observation:
    """Measure ``view``: mid, spread_bps, depth per window, plus ``trade_volume`` and ``extra`` values.

    ``ts_ns`` defaults to the book's own timestamp (``view.book_ts_ns``, also kept as
    ``book_ts_ns``). Raises
    ``BookNotReadyError`` if a side is empty, ``InvalidInputError`` for a bad window or when neither
    ``ts_ns`` nor the book has a timestamp.
    """
    tob = top_of_book(view)
    values: dict[str, float | None] = {"mid_price": tob.mid_price, "spread_bps": tob.spread_bps}
    for w in sorted({check_window(w) for w in windows_bps}):
        d = depth_within_bps(view, w)
        values[depth_key("bid", "size", w)] = d.bid_size
        values[depth_key("ask", "size", w)] = d.ask_size
        values[depth_key("bid", "notional", w)] = d.bid_notional
        values[depth_key("ask", "notional", w)] = d.ask_notional
    values["trade_volume"] = _finite("trade_volume", trade_volume, "base units")
    if extra:
        values.update(extra)
    ts = ts_ns if ts_ns is not None else view.book_ts_ns
    if ts is None:
        raise InvalidInputError(f"{view.instrument}: the book has no timestamp; pass ts_ns")
    return Observation(int(ts), view.instrument.venue, view.instrument.symbol, values, view.book_ts_ns)


# ----------------------------------------------------------------------------- metric series


def _column(observations: Sequence[Observation], key: str) -> np.ndarray:
    out = np.full(len(observations), np.nan)
    for i, o in enumerate(observations):
        v = o.values.get(key)
        if v is not None:
            out[i] = v
    return out


def _rolling_windows(x: np.ndarray, n: int) -> np.ndarray:
    """``(len(x) - n + 1, n)`` view of the trailing windows (empty when too short)."""
    if x.size < n:
        return np.empty((0, n))
    return sliding_window_view(x, n)


def metric_values(rule: AlertRule, observations: Sequence[Observation]) -> np.ndarray:
    """The rule's metric at each observation, float array (NaN = not computable), same length.

    ``observations`` must be one book's series in time order. Definitions in the module docstring.
    """
    n = len(observations)
    m = rule.metric
    if m in (AlertMetric.MID_PRICE, AlertMetric.SPREAD_BPS):
        return _column(observations, str(m))
    if m in (AlertMetric.DEPTH_NOTIONAL, AlertMetric.DEPTH_SIZE):
        unit = "notional" if m is AlertMetric.DEPTH_NOTIONAL else "size"
        bid = _column(observations, depth_key("bid", unit, rule.window_bps))
        ask = _column(observations, depth_key("ask", unit, rule.window_bps))
        return {DepthSide.BID: bid, DepthSide.ASK: ask}.get(rule.side, bid + ask)
    if m is AlertMetric.IMBALANCE:
        bid = _column(observations, depth_key("bid", "size", rule.window_bps))
        ask = _column(observations, depth_key("ask", "size", rule.window_bps))
        tot = bid + ask
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(tot > 0, (bid - ask) / tot, np.nan)
    out = np.full(n, np.nan)
    if m is AlertMetric.ZSCORE:
        x = _column(observations, str(rule.source))
        win = _rolling_windows(x, rule.lookback)
        if win.shape[0]:
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = win.mean(axis=1)
                std = win.std(axis=1, ddof=1)
                z = np.where(std > 0, (x[rule.lookback - 1 :] - mean) / std, np.nan)
            out[rule.lookback - 1 :] = z
        return out
    if m is AlertMetric.VOLATILITY:
        mid = _column(observations, "mid_price")
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.diff(np.log(mid))
        win = _rolling_windows(r, rule.lookback)
        if win.shape[0]:
            out[rule.lookback :] = np.sqrt((win * win).sum(axis=1)) * BPS
        return out
    # VOLUME: sum of trade_volume over (t - period, t], once the series spans the period
    ts = np.fromiter((o.ts_ns for o in observations), dtype=np.int64, count=n)
    vol = np.nan_to_num(_column(observations, "trade_volume"), nan=0.0)
    csum = np.concatenate(([0.0], np.cumsum(vol)))
    period_ns = round(rule.period_s * 1e9)
    first = np.searchsorted(ts, ts - period_ns, side="right")  # first index with ts_i > t - period
    total = csum[1:] - csum[first]
    if n:
        out = np.where(ts[0] <= ts - period_ns, total, np.nan)
    return out


def _condition(comp: Comparison, thr: float, v: np.ndarray, prev: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        if comp is Comparison.ABOVE:
            return v > thr
        if comp is Comparison.BELOW:
            return v < thr
        up = (prev <= thr) & (v > thr)
        down = (prev >= thr) & (v < thr)
    if comp is Comparison.CROSSES_ABOVE:
        return up
    if comp is Comparison.CROSSES_BELOW:
        return down
    return up | down


def _previous_known(v: np.ndarray, first_prev: float | None) -> np.ndarray:
    """``prev[i]`` = last non-NaN value of ``v`` before ``i`` (``first_prev`` before the start)."""
    seed = np.nan if first_prev is None else first_prev
    x = np.concatenate(([seed], v[:-1])) if v.size else v
    idx = np.where(~np.isnan(x), np.arange(x.size), 0)
    np.maximum.accumulate(idx, out=idx)
    out = x[idx]
    return out


def _fire(
    rule: AlertRule, ts: np.ndarray, v: np.ndarray, state: RuleState, start: int = 0
) -> tuple[list[int], list[float | None], RuleState]:
    """Indices ``>= start`` that fire, their previous values, and the state after the last index."""
    prev = _previous_known(v, state.last_value)
    known = ~np.isnan(v)
    cond = _condition(rule.comparison, rule.threshold, v, prev) & known
    n = v.size
    false_at = np.where(known & ~cond, np.arange(n), -1)
    last_false = np.maximum.accumulate(false_at) if n else false_at
    cd_ns = round(rule.cooldown_s * 1e9)
    clear = rule.rearm is Rearm.CLEAR
    last_fire_ns, armed = state.last_fire_ns, state.armed
    # "armed" of the incoming state holds at index start-1; a false value after it re-arms
    armed_since = start - 1
    fired: list[int] = []
    for i in np.flatnonzero(cond[start:]) + start:
        if clear and not armed:
            if last_false[i] > armed_since:
                armed = True
            else:
                continue
        if last_fire_ns is not None and ts[i] - last_fire_ns < cd_ns:
            continue
        fired.append(int(i))
        last_fire_ns = int(ts[i])
        if clear:
            armed, armed_since = False, int(i)
    if clear and not armed and n and last_false[-1] > armed_since:
        armed = True
    last_known = np.flatnonzero(known)
    last_value = float(v[last_known[-1]]) if last_known.size else state.last_value
    prevs = [None if np.isnan(prev[i]) else float(prev[i]) for i in fired]
    return fired, prevs, RuleState(last_fire_ns, armed if clear else True, last_value)


def _event(rule: AlertRule, o: Observation, value: float, prev: float | None) -> AlertEvent:
    where = f"{o.symbol} on {o.venue}"
    verb = {
        Comparison.ABOVE: "is above",
        Comparison.BELOW: "is below",
        Comparison.CROSSES_ABOVE: "crossed above",
        Comparison.CROSSES_BELOW: "crossed below",
        Comparison.CROSSES: "crossed",
    }[rule.comparison]
    was = f" (was {prev:.6g})" if prev is not None and rule.comparison in _CROSSING else ""
    return AlertEvent(
        rule_id=rule.id,
        rule_name=rule.name,
        venue=o.venue,
        symbol=o.symbol,
        metric=str(rule.metric),
        comparison=str(rule.comparison),
        threshold=rule.threshold,
        value=value,
        previous_value=prev,
        ts_ns=o.ts_ns,
        ts=iso_ns(o.ts_ns),
        book_ts_ns=o.book_ts_ns,
        book_ts=iso_ns(o.book_ts_ns),
        message=f"{rule.name}: {where} {rule.metric} {value:.6g} {verb} {rule.threshold:g}{was} at {iso_ns(o.ts_ns)}",
    )


def _check_series(observations: Sequence[Observation]) -> np.ndarray:
    ts = np.fromiter((o.ts_ns for o in observations), dtype=np.int64, count=len(observations))
    if ts.size > 1 and np.any(np.diff(ts) < 0):
        i = int(np.flatnonzero(np.diff(ts) < 0)[0])
        raise InvalidInputError(
            f"observations of one book must be in time order; ts_ns[{i + 1}]={ts[i + 1]} < ts_ns[{i}]={ts[i]}"
        )
    return ts


def evaluate_rule(
    rule: AlertRule,
    observations: Sequence[Observation],
    states: Mapping[str, RuleState] | None = None,
) -> tuple[list[AlertEvent], dict[str, RuleState]]:
    """Events of ``rule`` over ``observations`` (any books; those it does not watch are ignored).

    ``observations`` of each book must be in time order. ``states`` (venue -> ``RuleState``) carry
    cooldowns, arming and the previous value over from an earlier call; the returned states
    continue from the last observation. Events are in time order (ties: input order). Disabled
    rules return no events. Raises ``InvalidInputError`` for out-of-order observations.
    """
    new_states = dict(states or {})
    if not rule.enabled:
        return [], new_states
    by_venue: dict[str, list[Observation]] = {}
    for o in observations:
        if rule.matches(o.venue, o.symbol):
            by_venue.setdefault(o.venue, []).append(o)
    out: list[tuple[int, int, AlertEvent]] = []
    for venue, obs in by_venue.items():
        ts = _check_series(obs)
        v = metric_values(rule, obs)
        fired, prevs, new_states[venue] = _fire(rule, ts, v, new_states.get(venue, RuleState()))
        out.extend(
            (obs[i].ts_ns, i, _event(rule, obs[i], float(v[i]), p)) for i, p in zip(fired, prevs, strict=True)
        )
    out.sort(key=lambda x: (x[0], x[1]))
    return [e for _, _, e in out], new_states


def evaluate_rules(rules: Iterable[AlertRule], observations: Sequence[Observation]) -> list[AlertEvent]:
    """Every event of ``rules`` over ``observations`` from a fresh state, in time order (then rule order)."""
    events: list[tuple[int, int, AlertEvent]] = []
    for k, rule in enumerate(rules):
        evs, _ = evaluate_rule(rule, observations)
        events.extend((e.ts_ns, k, e) for e in evs)
    events.sort(key=lambda x: (x[0], x[1]))
    return [e for _, _, e in events]


def _history_needed(rule: AlertRule) -> int | None:
    """Observations the metric at ``t`` depends on (``t`` included); None = time-based (volume)."""
    if rule.metric is AlertMetric.ZSCORE:
        return rule.lookback
    if rule.metric is AlertMetric.VOLATILITY:
        return rule.lookback + 1
    if rule.metric is AlertMetric.VOLUME:
        return None
    return 1


class AlertEvaluator:
    """Incremental evaluation "as data arrives": ``update(observation)`` returns the events it fires.

    Gives the same events as :func:`evaluate_rule` over the whole series (tests check it on real
    data) while keeping only the last ``history`` observations per book. A volume rule whose
    ``period_s`` spans more than ``history`` observations never becomes computable; size
    ``history`` for the longest period at the sampling rate. Rules are replaced with ``set_rules``;
    a rule's state is keyed by ``rule.id`` (or its position when it has none).
    """

    def __init__(self, rules: Iterable[AlertRule] = (), history: int = 4096):
        if isinstance(history, bool) or not isinstance(history, int) or history < 2:
            raise InvalidInputError(f"history must be an integer >= 2 observations; got {history!r}")
        self.history = history
        self._series: dict[tuple[str, str], list[Observation]] = {}
        self._states: dict[tuple[Any, str], RuleState] = {}
        self.rules: list[AlertRule] = []
        self.set_rules(rules)

    def _key(self, k: int, rule: AlertRule) -> Any:
        return rule.id if rule.id is not None else ("pos", k)

    def set_rules(self, rules: Iterable[AlertRule]) -> None:
        """Replace the rules; states of rules that remain (same id) are kept."""
        self.rules = list(rules)
        for r in self.rules:
            need = _history_needed(r)
            if need is not None and need > self.history:
                raise InvalidInputError(
                    f"rule {r.name!r} needs {need} observations of history; this evaluator keeps {self.history}"
                )
        keep = {self._key(k, r) for k, r in enumerate(self.rules)}
        self._states = {k: s for k, s in self._states.items() if k[0] in keep}

    def series(self, venue: str, symbol: str) -> list[Observation]:
        """The retained observations of one book, oldest first."""
        return list(self._series.get((venue, symbol), ()))

    def update(self, obs: Observation) -> list[AlertEvent]:
        """Add one observation (after the book's previous one in time) and return the events it fires."""
        s = self._series.setdefault((obs.venue, obs.symbol), [])
        if s and obs.ts_ns < s[-1].ts_ns:
            raise InvalidInputError(
                f"{obs.symbol} on {obs.venue}: observation at {obs.ts_ns} is older than the last one ({s[-1].ts_ns})"
            )
        s.append(obs)
        if len(s) > 2 * self.history:
            del s[: len(s) - self.history]
        out: list[AlertEvent] = []
        for k, rule in enumerate(self.rules):
            if not rule.enabled or not rule.matches(obs.venue, obs.symbol):
                continue
            need = _history_needed(rule)
            if need is None:  # volume: everything held (the period check needs the series start)
                tail = s[-self.history :]
            else:
                tail = s[-need:]
            v = metric_values(rule, tail)
            ts = np.fromiter((o.ts_ns for o in tail), dtype=np.int64, count=len(tail))
            key = (self._key(k, rule), obs.venue)
            fired, prevs, self._states[key] = _fire(
                rule, ts, v, self._states.get(key, RuleState()), start=len(tail) - 1
            )
            out.extend(_event(rule, obs, float(v[-1]), p) for _, p in zip(fired, prevs, strict=True))
        return out


# ------------------------------------------------------------------------- liquidity crunches


class CrunchEpisode(Result):
    """One liquidity crunch: depth below ``drop_ratio`` x its rolling baseline until it recovers."""

    onset_index: int
    onset_ts_ns: int
    onset_ts: str
    onset_depth: float
    baseline_depth: float  # rolling median at onset, frozen for the episode
    trough_index: int
    trough_ts_ns: int
    trough_ts: str
    trough_depth: float
    drop_pct: float  # (1 - trough / baseline) * 100
    recovered: bool
    recovery_index: int | None
    recovery_ts_ns: int | None  # None: not recovered by the last observation
    recovery_ts: str | None
    duration_s: float | None  # onset -> recovery
    observations: int  # in the episode (onset .. before recovery)
    hhi_onset: float | None = None  # None without per-venue depth (or no depth at all then)
    hhi_trough: float | None = None
    hhi_change: float | None = None  # hhi_trough - hhi_onset; > 0 = liquidity more concentrated
    shares_onset: dict[str, float] | None = None
    shares_trough: dict[str, float] | None = None


class LiquidityCrunchReport(Result):
    """Crunch episodes found in one depth series, with the parameters used."""

    n_observations: int
    baseline_n: int
    drop_ratio: float
    recovery_ratio: float
    window_bps: float | None  # what the depth measures, when the caller says
    unit: str  # "notional" (quote) or "size" (base), as the caller says
    venues: tuple[str, ...]  # venues summed into the depth (empty: a single series)
    first_ts: str | None
    last_ts: str | None
    episodes: tuple[CrunchEpisode, ...]
    reason: str | None = None  # why there can be no episode (too few observations)


def _ratio(name: str, value: Any) -> float:
    v = _finite(name, value)
    if not 0 < v <= 1:
        raise InvalidInputError(f"{name} must be in (0, 1] (a fraction of the baseline); got {value!r}")
    return v


def _depth_array(name: str, values: Any, n: int | None) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{name} must be a 1-D sequence of numbers: {exc}") from exc
    if arr.ndim != 1:
        raise InvalidInputError(f"{name} must be 1-D; got shape {arr.shape}")
    if n is not None and arr.size != n:
        raise InvalidInputError(f"{name} has {arr.size} values but ts_ns has {n}")
    bad = np.flatnonzero(~np.isfinite(arr) | (arr < 0))
    if bad.size:
        i = int(bad[0])
        raise InvalidInputError(
            f"{name} must hold finite amounts >= 0 (drop missing samples first); {name}[{i}] = {float(arr[i])!r}"
        )
    return arr


def detect_liquidity_crunches(
    ts_ns: Sequence[int] | np.ndarray,
    depth: Sequence[float] | np.ndarray | None = None,
    *,
    venue_depth: Mapping[str, Sequence[float] | np.ndarray] | None = None,
    baseline_n: int = 60,
    drop_ratio: float = 0.5,
    recovery_ratio: float = 0.8,
    window_bps: float | None = None,
    unit: str = "notional",
) -> LiquidityCrunchReport:
    """Episodes where ``depth`` fell below ``drop_ratio`` x the median of its previous ``baseline_n``
    observations (definitions in the module docstring).

    ``ts_ns``: observation times (ns, non-decreasing). ``depth``: the depth within a window at each
    time (quote notional or base size; say which with ``unit`` and ``window_bps``, used as labels).
    ``venue_depth``: the same per venue (venue -> series); when given, ``depth`` defaults to their
    sum and each episode carries venue shares and HHI at onset and trough.

    Raises ``InvalidInputError`` for mismatched lengths, NaN/negative depth, decreasing times,
    ``baseline_n < 3``, ratios outside (0, 1], ``recovery_ratio < drop_ratio``, or neither
    ``depth`` nor ``venue_depth``. Fewer than ``baseline_n + 1`` observations give no episode and
    a ``reason``.
    """
    ts = np.asarray(ts_ns, dtype=np.int64)
    if ts.ndim != 1:
        raise InvalidInputError(f"ts_ns must be 1-D; got shape {ts.shape}")
    n = ts.size
    if n > 1 and np.any(np.diff(ts) < 0):
        i = int(np.flatnonzero(np.diff(ts) < 0)[0])
        raise InvalidInputError(f"ts_ns must be non-decreasing; ts_ns[{i + 1}] < ts_ns[{i}]")
    if isinstance(baseline_n, bool) or not isinstance(baseline_n, int) or baseline_n < 3:
        raise InvalidInputError(f"baseline_n must be an integer >= 3 observations; got {baseline_n!r}")
    drop = _ratio("drop_ratio", drop_ratio)
    rec = _ratio("recovery_ratio", recovery_ratio)
    if rec < drop:
        raise InvalidInputError(
            f"recovery_ratio ({rec:g}) must be >= drop_ratio ({drop:g}): an episode ends above where it began"
        )
    if unit not in ("notional", "size"):
        raise InvalidInputError(f"unit must be 'notional' or 'size'; got {unit!r}")
    window = None if window_bps is None else check_window(window_bps)
    venues: tuple[str, ...] = ()
    per_venue: np.ndarray | None = None
    if venue_depth is not None:
        if not venue_depth:
            raise InvalidInputError("venue_depth is empty; give at least one venue's series or pass depth")
        venues = tuple(venue_depth)
        per_venue = np.vstack([_depth_array(f"venue_depth[{v!r}]", venue_depth[v], n) for v in venues])
    if depth is None:
        if per_venue is None:
            raise InvalidInputError("give depth (one series) or venue_depth (series per venue)")
        d = per_venue.sum(axis=0)
    else:
        d = _depth_array("depth", depth, n)
    common = {
        "n_observations": n,
        "baseline_n": baseline_n,
        "drop_ratio": drop,
        "recovery_ratio": rec,
        "window_bps": window,
        "unit": unit,
        "venues": venues,
        "first_ts": iso_ns(int(ts[0])) if n else None,
        "last_ts": iso_ns(int(ts[-1])) if n else None,
    }
    if n <= baseline_n:
        return LiquidityCrunchReport(
            **common,
            episodes=(),
            reason=f"{n} observations; a baseline needs {baseline_n} before the first one tested",
        )
    # baseline[t] = median(d[t - baseline_n : t]) for t >= baseline_n
    baseline = np.full(n, np.nan)
    baseline[baseline_n:] = np.median(sliding_window_view(d[:-1], baseline_n), axis=1)
    with np.errstate(invalid="ignore"):
        below = d < drop * baseline  # False where the baseline is NaN

    def hhi_at(i: int) -> tuple[float | None, dict[str, float] | None]:
        if per_venue is None:
            return None, None
        return herfindahl({v: float(per_venue[k, i]) for k, v in enumerate(venues)})

    episodes = []
    t = baseline_n
    while t < n:
        hits = np.flatnonzero(below[t:])
        if not hits.size:
            break
        onset = t + int(hits[0])
        base = float(baseline[onset])
        ups = np.flatnonzero(d[onset + 1 :] >= rec * base)
        recovery = onset + 1 + int(ups[0]) if ups.size else None
        end = recovery if recovery is not None else n
        trough = onset + int(np.argmin(d[onset:end]))
        h_on, s_on = hhi_at(onset)
        h_tr, s_tr = hhi_at(trough)
        episodes.append(
            CrunchEpisode(
                onset_index=onset,
                onset_ts_ns=int(ts[onset]),
                onset_ts=iso_ns(int(ts[onset])),
                onset_depth=float(d[onset]),
                baseline_depth=base,
                trough_index=trough,
                trough_ts_ns=int(ts[trough]),
                trough_ts=iso_ns(int(ts[trough])),
                trough_depth=float(d[trough]),
                drop_pct=(1.0 - float(d[trough]) / base) * 100.0,
                recovered=recovery is not None,
                recovery_index=recovery,
                recovery_ts_ns=None if recovery is None else int(ts[recovery]),
                recovery_ts=None if recovery is None else iso_ns(int(ts[recovery])),
                duration_s=None if recovery is None else (int(ts[recovery]) - int(ts[onset])) / 1e9,
                observations=end - onset,
                hhi_onset=h_on,
                hhi_trough=h_tr,
                hhi_change=None if h_on is None or h_tr is None else h_tr - h_on,
                shares_onset=s_on,
                shares_trough=s_tr,
            )
        )
        if recovery is None:
            break
        t = recovery
    return LiquidityCrunchReport(**common, episodes=tuple(episodes))

"""Pairs (statistical arbitrage) analytics on two close-price series, and what the trade costs.

Pure functions over pandas Series of close prices indexed by UTC timestamps; the statistics are
statsmodels' (OLS, RLM, ``adfuller``, ``coint``), passed through unchanged. Definitions:

- alignment: inner join on the timestamp index, rows with a non-finite or non-positive price dropped;
- hedge ratio: ``log(a) = alpha + beta * log(b) + e``, by OLS (``statsmodels.OLS`` with a constant)
  and by Huber's robust regression (``statsmodels.RLM`` with ``HuberT()``, Huber 1964), which
  down-weights outliers such as crash candles;
- spread: ``s_t = log(a_t) - beta * log(b_t) - alpha`` (OLS coefficients);
- rolling z-score: ``(s_t - mean_w(s)) / std_w(s)`` over the last ``zscore_window`` points
  (pandas ``rolling``, sample std, ddof=1);
- ADF on the spread: ``statsmodels.tsa.stattools.adfuller`` (constant, lag length by AIC);
  note that on a *fitted* spread the ADF critical values are too lenient: the Engle-Granger test
  below uses the right (MacKinnon 2010) ones;
- Engle-Granger cointegration: ``statsmodels.tsa.stattools.coint(log a, log b)`` (Engle & Granger 1987);
- rolling Pearson correlation of log returns over ``corr_window`` points;
- half-life of mean reversion: OLS ``Δs_t = c + λ s_{t-1} + e``; ``half_life = -ln 2 / λ`` in
  periods (the Ornstein-Uhlenbeck discretisation used e.g. in E. Chan, "Algorithmic Trading", 2013,
  ch. 2); None with a reason when ``λ >= 0`` (no mean reversion).

``pair_trade_cost`` walks both legs through real books (``market_impact``) to enter and to exit, so
a z-score signal can be read next to its round-trip cost.
"""

from __future__ import annotations

import math

import numpy as np

from market_liquidity_monitor.analytics.liquidity import (
    ImpactResult,
    Result,
    check_number,
    exact_mid,
    market_impact,
)
from market_liquidity_monitor.book.view import BookView
from market_liquidity_monitor.domain.errors import InvalidInputError
from market_liquidity_monitor.domain.instrument import Side
from market_liquidity_monitor.lazy import lazy_module

pd = lazy_module("pandas")  # imported on first use: a book question never needs it

__all__ = [
    "MIN_OBS_FOR_ADF",
    "AdfResult",
    "CointResult",
    "HalfLife",
    "PairAnalysis",
    "PairLegCost",
    "PairTradeCost",
    "align_closes",
    "analyze_pair",
    "pair_series",
    "pair_trade_cost",
]

# Fewest aligned points accepted: below ~30 the ADF/Engle-Granger asymptotic critical values
# (MacKinnon) are unreliable and statsmodels' AIC lag search has almost nothing to work with.
MIN_OBS_FOR_ADF = 30


class AdfResult(Result):
    """Augmented Dickey-Fuller test of the spread (``statsmodels.tsa.stattools.adfuller``)."""

    stat: float
    p_value: float
    critical_values: dict[str, float]  # "1%", "5%", "10%"
    lags_used: int
    n_obs_used: int
    rejects_unit_root_5pct: bool  # stat < critical_values["5%"]


class CointResult(Result):
    """Engle-Granger test (``statsmodels.tsa.stattools.coint``, log a on log b)."""

    stat: float
    p_value: float
    critical_values: dict[str, float]  # "1%", "5%", "10%" (MacKinnon 2010)
    cointegrated_5pct: bool  # p_value < 0.05


class HalfLife(Result):
    """Half-life of mean reversion of the spread, in periods of the series and in hours."""

    lambda_per_period: float  # λ of Δs_t = c + λ s_{t-1}
    half_life_periods: float | None
    half_life_hours: float | None  # None if the period cannot be inferred from the index
    reason: str | None = None


class PairAnalysis(Result):
    """Hedge ratios, spread statistics and tests for the pair ``a`` / ``b``."""

    name_a: str
    name_b: str
    n_obs: int  # aligned points
    start: str  # ISO 8601 UTC of the first aligned point
    end: str
    period_s: float | None  # median spacing of the index, seconds
    hedge_ratio_ols: float  # beta
    alpha_ols: float
    r_squared_ols: float
    hedge_ratio_huber: float
    alpha_huber: float
    spread_last: float  # log units
    spread_std: float
    zscore_window: int
    zscore_last: float | None  # None with zscore_reason if the last window's std is 0
    zscore_reason: str | None = None
    corr_window: int
    return_corr_last: float | None
    return_corr_mean: float | None
    adf: AdfResult
    coint: CointResult
    half_life: HalfLife


class PairLegCost(Result):
    """One walk of one leg (enter or exit)."""

    leg: str  # "a" or "b"
    phase: str  # "enter" or "exit"
    impact: ImpactResult
    fee_bps: float
    cost_quote: float  # slippage vs mid + fee, quote units (>= 0 for a normal book)


class PairTradeCost(Result):
    """Round-trip cost of a pair trade: both legs entered then exited against the same books."""

    direction: str  # "long_spread" (buy a, sell b) or "short_spread"
    size_a: float  # base units of a
    size_b: float  # base units of b = beta * size_a * mid_a / mid_b
    beta: float
    notional_a: float  # size_a * mid_a
    notional_b: float
    legs: tuple[PairLegCost, ...]
    fully_filled: bool
    round_trip_cost_quote: float
    round_trip_cost_bps: float  # of notional_a + notional_b
    cost_in_spread_units: float  # round_trip_cost_quote / notional_a: the log-spread move that pays it
    breakeven_zscore_move: float | None  # cost_in_spread_units / spread_std, if spread_std given
    reason: str | None = None


# ----------------------------------------------------------------------------------- helpers


def _iso(ts: pd.Timestamp) -> str:
    ts = pd.Timestamp(ts)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.isoformat().replace("+00:00", "Z")


def align_closes(close_a: pd.Series, close_b: pd.Series) -> pd.DataFrame:
    """Inner-join two close series on their index; columns ``a``, ``b``; non-finite or <= 0 dropped."""
    for name, s in (("close_a", close_a), ("close_b", close_b)):
        if not isinstance(s, pd.Series):
            raise InvalidInputError(
                f"{name} must be a pandas Series indexed by timestamp; got {type(s).__name__}"
            )
    df = pd.concat(
        {"a": close_a.astype(float), "b": close_b.astype(float)}, axis=1, join="inner"
    ).sort_index()
    ok = np.isfinite(df["a"]) & np.isfinite(df["b"]) & (df["a"] > 0) & (df["b"] > 0)
    return df[ok]


def _check_points(name: str, w: int) -> int:
    if isinstance(w, bool) or not isinstance(w, (int, np.integer)) or w < 2:
        raise InvalidInputError(f"{name} must be an integer >= 2 (points); got {w!r}")
    return int(w)


def _half_life(spread: np.ndarray, period_s: float | None) -> HalfLife:
    lagged = spread[:-1]
    delta = np.diff(spread)
    import statsmodels.api as sm  # statsmodels/scipy load on the first pairs question, not at start-up

    fit = sm.OLS(delta, sm.add_constant(lagged)).fit()
    lam = float(fit.params[1])
    if lam >= 0:
        return HalfLife(
            lambda_per_period=lam,
            half_life_periods=None,
            half_life_hours=None,
            reason=f"λ = {lam:.3g} >= 0: the spread does not mean-revert (no finite half-life)",
        )
    hl = -math.log(2.0) / lam
    return HalfLife(
        lambda_per_period=lam,
        half_life_periods=hl,
        half_life_hours=None if period_s is None else hl * period_s / 3600.0,
    )


def pair_series(
    close_a: pd.Series, close_b: pd.Series, zscore_window: int = 48, corr_window: int = 48
) -> pd.DataFrame:
    """Aligned series: ``log_a``, ``log_b``, ``spread``, ``zscore``, ``return_corr`` (OLS hedge).

    Same definitions and errors as ``analyze_pair``.
    """
    return _fit(close_a, close_b, zscore_window, corr_window)[0]


def _fit(close_a, close_b, zscore_window, corr_window):
    zw = _check_points("zscore_window", zscore_window)
    cw = _check_points("corr_window", corr_window)
    df = align_closes(close_a, close_b)
    need = max(MIN_OBS_FOR_ADF, zw + 1, cw + 2)
    if len(df) < need:
        raise InvalidInputError(
            f"only {len(df)} overlapping points with finite positive closes "
            f"({len(close_a)} in a, {len(close_b)} in b); at least {need} are needed "
            f"(ADF minimum {MIN_OBS_FOR_ADF}, zscore_window + 1 = {zw + 1}, corr_window + 2 = {cw + 2})"
        )
    la, lb = np.log(df["a"]), np.log(df["b"])
    import statsmodels.api as sm

    ols = sm.OLS(la.to_numpy(), sm.add_constant(lb.to_numpy())).fit()
    alpha, beta = float(ols.params[0]), float(ols.params[1])
    spread = la - beta * lb - alpha
    roll = spread.rolling(zw)
    z = (spread - roll.mean()) / roll.std()
    ra, rb = la.diff(), lb.diff()
    corr = ra.rolling(cw).corr(rb)
    out = pd.DataFrame({"log_a": la, "log_b": lb, "spread": spread, "zscore": z, "return_corr": corr})
    return out, beta, alpha, ols, zw, cw


def analyze_pair(
    close_a: pd.Series,
    close_b: pd.Series,
    zscore_window: int = 48,
    corr_window: int = 48,
    name_a: str = "a",
    name_b: str = "b",
) -> PairAnalysis:
    """Hedge ratios (OLS and Huber), spread, z-score, ADF, Engle-Granger, correlation and half-life.

    ``close_a``/``close_b``: pandas Series of close prices (quote units) indexed by UTC timestamps;
    they are inner-joined. Windows are counts of points. See the module docstring for formulas.

    Raises ``InvalidInputError`` for a non-Series input, a window < 2, or fewer aligned points than
    ``max(MIN_OBS_FOR_ADF, zscore_window + 1, corr_window + 2)`` (the message gives both numbers).
    """
    df, beta, alpha, ols, zw, cw = _fit(close_a, close_b, zscore_window, corr_window)
    la, lb = df["log_a"].to_numpy(), df["log_b"].to_numpy()
    import statsmodels.api as sm
    from statsmodels.tsa.stattools import adfuller, coint

    huber = sm.RLM(la, sm.add_constant(lb), M=sm.robust.norms.HuberT()).fit()
    spread = df["spread"].to_numpy()
    adf_stat, adf_p, adf_lags, adf_nobs, adf_crit, _ = adfuller(spread, autolag="AIC", result_object=False)
    c_stat, c_p, c_crit = coint(la, lb)
    idx = df.index
    period_s = None
    if isinstance(idx, pd.DatetimeIndex) and len(idx) > 1:
        period_s = float(pd.Series(idx).diff().dropna().median().total_seconds())
    z_last = df["zscore"].iloc[-1]
    z_reason = None
    if not np.isfinite(z_last):
        z_last, z_reason = None, f"the spread is constant over the last {zw} points (std 0)"
    corr = df["return_corr"].dropna()
    return PairAnalysis(
        name_a=name_a,
        name_b=name_b,
        n_obs=len(df),
        start=_iso(idx[0]) if isinstance(idx, pd.DatetimeIndex) else str(idx[0]),
        end=_iso(idx[-1]) if isinstance(idx, pd.DatetimeIndex) else str(idx[-1]),
        period_s=period_s,
        hedge_ratio_ols=beta,
        alpha_ols=alpha,
        r_squared_ols=float(ols.rsquared),
        hedge_ratio_huber=float(huber.params[1]),
        alpha_huber=float(huber.params[0]),
        spread_last=float(spread[-1]),
        spread_std=float(np.std(spread, ddof=1)),
        zscore_window=zw,
        zscore_last=None if z_last is None else float(z_last),
        zscore_reason=z_reason,
        corr_window=cw,
        return_corr_last=float(corr.iloc[-1]) if len(corr) else None,
        return_corr_mean=float(corr.mean()) if len(corr) else None,
        adf=AdfResult(
            stat=float(adf_stat),
            p_value=float(adf_p),
            critical_values={k: float(v) for k, v in adf_crit.items()},
            lags_used=int(adf_lags),
            n_obs_used=int(adf_nobs),
            rejects_unit_root_5pct=bool(adf_stat < adf_crit["5%"]),
        ),
        coint=CointResult(
            stat=float(c_stat),
            p_value=float(c_p),
            critical_values=dict(zip(("1%", "5%", "10%"), (float(x) for x in c_crit), strict=True)),
            cointegrated_5pct=bool(c_p < 0.05),
        ),
        half_life=_half_life(spread, period_s),
    )


def pair_trade_cost(
    view_a: BookView,
    view_b: BookView,
    size_a: float,
    beta: float,
    direction: str = "long_spread",
    fees_bps_a: float = 0.0,
    fees_bps_b: float = 0.0,
    spread_std: float | None = None,
) -> PairTradeCost:
    """Round-trip taker cost of trading the spread ``log a - beta log b`` with ``size_a`` of a.

    Legs: ``size_b = |beta| * size_a * mid_a / mid_b`` (equal log exposure: notional_b = |beta| *
    notional_a). ``long_spread`` enters by buying a and selling b (short b if beta < 0 is not
    modelled: the sign of beta flips b's side), ``short_spread`` the opposite; exit reverses both.
    Each of the four walks is ``market_impact`` on the given book (the exit is priced on the same
    books: today's liquidity, not a forecast). Cost of a walk = ``slippage_bps / 1e4 * filled_notional``
    + fee on the filled notional.

    Raises ``InvalidInputError`` for ``size_a <= 0``, beta not finite or 0, unknown direction, fees
    < 0; ``BookNotReadyError`` / ``InsufficientLiquidityError`` as ``market_impact``.
    """
    size_a = check_number("size_a", size_a, unit="base units of a")
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not math.isfinite(beta) or beta == 0:
        raise InvalidInputError(f"beta must be a finite non-zero number; got {beta!r}")
    fa = check_number("fees_bps_a", fees_bps_a, allow_zero=True, unit="bps")
    fb = check_number("fees_bps_b", fees_bps_b, allow_zero=True, unit="bps")
    if direction not in ("long_spread", "short_spread"):
        raise InvalidInputError(f"direction must be 'long_spread' or 'short_spread'; got {direction!r}")
    buy_a = direction == "long_spread"
    sell_b = buy_a if beta > 0 else not buy_a
    side_a_enter = Side.BUY if buy_a else Side.SELL
    side_b_enter = Side.SELL if sell_b else Side.BUY
    mid_a, mid_b = exact_mid(view_a)[0], exact_mid(view_b)[0]
    size_b = abs(beta) * size_a * mid_a / mid_b
    flip = {Side.BUY: Side.SELL, Side.SELL: Side.BUY}
    legs = []
    plan = [
        ("a", "enter", view_a, side_a_enter, size_a, fa),
        ("b", "enter", view_b, side_b_enter, size_b, fb),
        ("a", "exit", view_a, flip[side_a_enter], size_a, fa),
        ("b", "exit", view_b, flip[side_b_enter], size_b, fb),
    ]
    for leg, phase, view, side, size, fee in plan:
        imp = market_impact(view, side, size=size)
        cost = imp.slippage_bps / 1e4 * imp.filled_notional + imp.filled_notional * fee / 1e4
        legs.append(PairLegCost(leg=leg, phase=phase, impact=imp, fee_bps=fee, cost_quote=cost))
    total = sum(x.cost_quote for x in legs)
    notional_a = size_a * mid_a
    notional_b = size_b * mid_b
    full = all(x.impact.fully_filled for x in legs)
    in_spread = total / notional_a
    return PairTradeCost(
        direction=direction,
        size_a=size_a,
        size_b=size_b,
        beta=float(beta),
        notional_a=notional_a,
        notional_b=notional_b,
        legs=tuple(legs),
        fully_filled=full,
        round_trip_cost_quote=total,
        round_trip_cost_bps=total / (notional_a + notional_b) * 1e4,
        cost_in_spread_units=in_spread,
        breakeven_zscore_move=None if not spread_std else in_spread / spread_std,
        reason=None
        if full
        else "a leg could not be filled by the visible book; costs cover the visible part",
    )

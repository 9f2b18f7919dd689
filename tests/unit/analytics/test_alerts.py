"""Alert rules, their evaluation (cooldown, re-arm, crossings, derived metrics) and the crunch
detector on small hand-checked series. Real-data behaviour: tests/integration/test_alerts_real.py.
"""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest

from market_liquidity_monitor.analytics.alerts import (
    AlertEvaluator,
    AlertRule,
    Observation,
    depth_key,
    detect_liquidity_crunches,
    evaluate_rule,
    evaluate_rules,
    metric_values,
    sample_observation,
)
from market_liquidity_monitor.book.view import BookView
from market_liquidity_monitor.domain.errors import InvalidInputError
from market_liquidity_monitor.domain.instrument import InstrumentId

S = 1_000_000_000
T0 = 1_723_161_600 * S


def obs(values: list[dict], venue: str = "binance", dt_s: float = 1.0) -> list[Observation]:
    return [Observation(T0 + round(i * dt_s * S), venue, "BTC/USDT", v) for i, v in enumerate(values)]


def spread_obs(xs, **kw):
    return obs([{"spread_bps": x} for x in xs], **kw)


def fired_at(events) -> list[int]:
    return [(e.ts_ns - T0) // S for e in events]


def test_above_cooldown_rearm_by_cooldown():
    # spread 1 2 6 7 8 9 2 7 8 at 1 s steps, above 5, cooldown 2 s
    rule = AlertRule(symbol="BTC/USDT", metric="spread_bps", comparison="above", threshold=5, cooldown_s=2)
    events, states = evaluate_rule(rule, spread_obs([1, 2, 6, 7, 8, 9, 2, 7, 8]))
    assert fired_at(events) == [2, 4, 7]  # 3 is within 2 s of 2; 6 is below; 7 is 3 s after 4
    assert events[0].value == 6 and events[0].venue == "binance"
    assert states["binance"].last_fire_ns == T0 + 7 * S


def test_above_rearm_after_clear():
    rule = AlertRule(
        symbol="BTC/USDT", metric="spread_bps", comparison="above", threshold=5, cooldown_s=0, rearm="clear"
    )
    events, _ = evaluate_rule(rule, spread_obs([1, 6, 7, 8, 2, 9, 9]))
    assert fired_at(events) == [1, 5]  # one event per episode
    # cooldown still applies after the condition clears
    rule = AlertRule(
        symbol="BTC/USDT", metric="spread_bps", comparison="above", threshold=5, cooldown_s=10, rearm="clear"
    )
    assert fired_at(evaluate_rule(rule, spread_obs([6, 2, 6, 2, 6] + [2] * 8 + [6]))[0]) == [0, 13]


def test_missing_values_neither_fire_nor_clear():
    rule = AlertRule(
        symbol="BTC/USDT", metric="spread_bps", comparison="above", threshold=5, cooldown_s=0, rearm="clear"
    )
    assert fired_at(evaluate_rule(rule, spread_obs([6, None, 7, None, 4, 8]))[0]) == [0, 5]


def test_crossings_use_previous_known_value():
    xs = [4, 6, 6, None, 4, 3, 7]
    up = AlertRule(
        symbol="BTC/USDT", metric="spread_bps", comparison="crosses_above", threshold=5, cooldown_s=0
    )
    down = AlertRule(
        symbol="BTC/USDT", metric="spread_bps", comparison="crosses_below", threshold=5, cooldown_s=0
    )
    both = AlertRule(symbol="BTC/USDT", metric="spread_bps", comparison="crosses", threshold=5, cooldown_s=0)
    ev_up = evaluate_rule(up, spread_obs(xs))[0]
    assert fired_at(ev_up) == [1, 6] and ev_up[1].previous_value == 3
    ev_down = evaluate_rule(down, spread_obs(xs))[0]
    assert fired_at(ev_down) == [4] and ev_down[0].previous_value == 6  # across the missing value
    assert fired_at(evaluate_rule(both, spread_obs(xs))[0]) == [1, 4, 6]


def test_state_carries_over_between_calls():
    rule = AlertRule(
        symbol="BTC/USDT", metric="spread_bps", comparison="crosses_above", threshold=5, cooldown_s=3
    )
    series = spread_obs([4, 6, 4, 6, 4, 6, 4, 6])
    whole = fired_at(evaluate_rule(rule, series)[0])
    first, st = evaluate_rule(rule, series[:4])
    second, _ = evaluate_rule(rule, series[4:], st)
    assert whole == fired_at(first) + fired_at(second) == [1, 5]


def test_venue_filter_and_per_venue_state():
    a = spread_obs([6, 6, 6], venue="binance")
    b = spread_obs([1, 6, 1], venue="kraken")
    any_venue = AlertRule(
        symbol="BTC/USDT", metric="spread_bps", comparison="above", threshold=5, cooldown_s=60
    )
    events = evaluate_rules([any_venue], [*a, *b])
    assert [(e.venue, (e.ts_ns - T0) // S) for e in events] == [("binance", 0), ("kraken", 1)]
    only = AlertRule(
        symbol="BTC/USDT", venue="kraken", metric="spread_bps", comparison="above", threshold=5, cooldown_s=60
    )
    assert [e.venue for e in evaluate_rules([only], [*a, *b])] == ["kraken"]
    other = AlertRule(symbol="ETH/USDT", metric="spread_bps", comparison="above", threshold=5)
    assert evaluate_rules([other], [*a, *b]) == []


def test_depth_and_imbalance_metrics():
    w = 25
    vals = [
        {depth_key("bid", "size", w): 3.0, depth_key("ask", "size", w): 1.0,
         depth_key("bid", "notional", w): 300.0, depth_key("ask", "notional", w): 101.0},
        {depth_key("bid", "size", w): 0.0, depth_key("ask", "size", w): 0.0,
         depth_key("bid", "notional", w): 0.0, depth_key("ask", "notional", w): 0.0},
    ]  # fmt: skip
    o = obs(vals)
    both = AlertRule(
        symbol="BTC/USDT", metric="depth_notional", comparison="below", threshold=1, window_bps=w
    )
    ask = AlertRule(
        symbol="BTC/USDT", metric="depth_size", comparison="below", threshold=1, window_bps=w, side="ask"
    )
    imb = AlertRule(symbol="BTC/USDT", metric="imbalance", comparison="above", threshold=0.4, window_bps=w)
    assert metric_values(both, o).tolist() == [401.0, 0.0]
    assert metric_values(ask, o).tolist() == [1.0, 0.0]
    v = metric_values(imb, o)
    assert v[0] == pytest.approx(0.5) and math.isnan(v[1])  # empty window: not computable


def test_zscore_and_volatility_definitions():
    mids = [100.0, 101.0, 99.0, 102.0, 98.0, 103.0]
    o = obs([{"mid_price": m} for m in mids])
    z = metric_values(
        AlertRule(symbol="BTC/USDT", metric="zscore", comparison="above", threshold=2, lookback=3), o
    )
    assert np.isnan(z[:2]).all()
    for t in range(2, 6):
        win = mids[t - 2 : t + 1]
        assert z[t] == pytest.approx((mids[t] - statistics.mean(win)) / statistics.stdev(win))
    vol = metric_values(
        AlertRule(symbol="BTC/USDT", metric="volatility", comparison="above", threshold=1, lookback=2), o
    )
    assert np.isnan(vol[:2]).all()
    r = np.diff(np.log(mids))
    assert vol[5] == pytest.approx(math.sqrt(r[3] ** 2 + r[4] ** 2) * 1e4)


def test_volume_needs_the_whole_period():
    o = obs([{"trade_volume": x} for x in [1.0, 2.0, 3.0, 4.0, 5.0]])
    v = metric_values(
        AlertRule(symbol="BTC/USDT", metric="volume", comparison="above", threshold=1, period_s=2), o
    )
    # (t - 2 s, t]: t=2 -> 2+3, t=3 -> 3+4, t=4 -> 4+5; t < 2 s: the series does not span 2 s yet
    assert np.isnan(v[:2]).all() and v[2:].tolist() == [5.0, 7.0, 9.0]


def test_incremental_evaluator_equals_batch():
    rng = np.random.default_rng(7)
    mids = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, 300)))
    o = obs([{"mid_price": float(m), "spread_bps": float(s), "trade_volume": float(v)}
             for m, s, v in zip(mids, rng.uniform(0, 10, 300), rng.uniform(0, 3, 300), strict=True)])  # fmt: skip
    rules = [
        AlertRule(symbol="BTC/USDT", metric="zscore", comparison="crosses", threshold=1.5, lookback=20, cooldown_s=3, id=1),
        AlertRule(symbol="BTC/USDT", metric="volatility", comparison="above", threshold=12, lookback=10, cooldown_s=5, rearm="clear", id=2),
        AlertRule(symbol="BTC/USDT", metric="volume", comparison="below", threshold=12, period_s=8, cooldown_s=4, id=3),
        AlertRule(symbol="BTC/USDT", metric="spread_bps", comparison="above", threshold=9, cooldown_s=10, id=4),
    ]  # fmt: skip
    ev = AlertEvaluator(rules, history=64)
    streamed = [e for x in o for e in ev.update(x)]
    batch = evaluate_rules(rules, o)
    assert len(batch) > 10
    assert [(e.rule_id, e.ts_ns, e.value) for e in sorted(streamed, key=lambda e: (e.ts_ns, e.rule_id))] == [
        (e.rule_id, e.ts_ns, pytest.approx(e.value)) for e in batch
    ]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"metric": "depth"}, "unknown metric 'depth'; valid: mid_price, spread_bps, depth_notional"),
        ({"comparison": ">"}, "unknown comparison '>'; valid: above, below, crosses_above"),
        ({"rearm": "never"}, "unknown rearm"),
        ({"metric": "depth_notional"}, "needs window_bps"),
        ({"metric": "depth_notional", "window_bps": 0}, "window_bps must be a finite number > 0"),
        (
            {"metric": "depth_notional", "window_bps": 10, "side": "top"},
            "unknown side 'top'; valid: both, bid, ask",
        ),
        ({"window_bps": 10}, "window_bps applies to metric depth_notional / depth_size / imbalance only"),
        ({"metric": "zscore", "lookback": 1}, r"lookback, an integer number of observations in \[2,"),
        ({"metric": "volatility"}, "needs lookback"),
        ({"metric": "zscore", "lookback": 5, "source": "vwap"}, "valid: mid_price, spread_bps, pair_spread"),
        ({"metric": "volume"}, "needs period_s"),
        ({"metric": "volume", "period_s": -1}, "period_s must be > 0"),
        ({"metric": "imbalance", "window_bps": 10, "threshold": 2}, r"in \[-1, 1\]"),
        ({"cooldown_s": -1}, "cooldown_s must be >= 0"),
        ({"threshold": float("nan")}, "threshold must be a finite number"),
        ({"symbol": " "}, "symbol must be a non-empty"),
    ],
)
def test_rule_validation(kwargs, match):
    base = {"symbol": "BTC/USDT", "metric": "spread_bps", "comparison": "above", "threshold": 5}
    with pytest.raises(InvalidInputError, match=match):
        AlertRule(**{**base, **kwargs})


def test_rule_round_trip_and_unknown_field():
    r = AlertRule(symbol="btc/usdt", venue="Binance", metric="DEPTH_NOTIONAL", comparison="below",
                  threshold=1e6, window_bps=50, cooldown_s=30)  # fmt: skip
    assert (r.symbol, r.venue, r.metric, r.side) == ("BTC/USDT", "binance", "depth_notional", "both")
    assert AlertRule.from_dict(r.to_dict()) == r
    assert "within 50 bps" in r.name
    with pytest.raises(InvalidInputError, match=r"unknown alert rule field.*window.*valid: symbol"):
        AlertRule.from_dict({**r.to_dict(), "window": 5})


def test_out_of_order_observations_rejected():
    rule = AlertRule(symbol="BTC/USDT", metric="spread_bps", comparison="above", threshold=5)
    o = spread_obs([1, 2, 3])
    with pytest.raises(InvalidInputError, match="time order"):
        evaluate_rule(rule, [o[1], o[0]])
    ev = AlertEvaluator([rule])
    ev.update(o[1])
    with pytest.raises(InvalidInputError, match="older than the last one"):
        ev.update(o[0])


def test_sample_observation_keys():
    view = BookView.from_levels(
        InstrumentId("x", "BTC/USDT"), [(99.9, 2), (99.0, 5)], [(100.1, 1), (101.5, 3)], ts_event_ns=T0
    )
    o = sample_observation(view, [25, 50], trade_volume=1.5)
    assert o.ts_ns == T0 and o.values["mid_price"] == pytest.approx(100.0)
    assert o.values["spread_bps"] == pytest.approx(20.0)
    assert o.values[depth_key("bid", "size", 25)] == 2 and o.values[depth_key("ask", "size", 25)] == 1
    assert o.values[depth_key("ask", "notional", 50)] == pytest.approx(100.1)
    assert o.values["trade_volume"] == 1.5


# ------------------------------------------------------------------------------- crunches


def test_crunch_episode_hand_checked():
    # baseline of the 4 previous = 10; drops to 4 (onset), trough 2, recovers at 9 (>= 0.8 * 10)
    d = [10, 10, 10, 10, 4, 2, 3, 7, 9, 10, 10]
    ts = [T0 + i * S for i in range(len(d))]
    rep = detect_liquidity_crunches(ts, d, baseline_n=4, drop_ratio=0.5, recovery_ratio=0.8)
    (e,) = rep.episodes
    assert (e.onset_index, e.trough_index, e.recovery_index) == (4, 5, 8)
    assert e.baseline_depth == 10 and e.trough_depth == 2 and e.drop_pct == pytest.approx(80.0)
    assert e.duration_s == 4.0 and e.recovered and e.observations == 4
    assert e.hhi_onset is None
    # not recovered: open episode
    rep = detect_liquidity_crunches(ts[:8], d[:8], baseline_n=4)
    assert rep.episodes[0].recovery_ts_ns is None and not rep.episodes[0].recovered


def test_crunch_hhi_change_per_venue():
    a = [6, 6, 6, 6, 1, 1, 6]
    b = [4, 4, 4, 4, 3, 1, 4]
    ts = [T0 + i * S for i in range(7)]
    rep = detect_liquidity_crunches(ts, venue_depth={"a": a, "b": b}, baseline_n=3)
    (e,) = rep.episodes
    assert e.onset_index == 4 and e.trough_index == 5 and e.baseline_depth == 10
    assert e.hhi_onset == pytest.approx(0.25**2 + 0.75**2) and e.hhi_trough == pytest.approx(0.5)
    assert e.hhi_change == pytest.approx(0.5 - 0.625) and e.shares_onset == {"a": 0.25, "b": 0.75}


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"baseline_n": 2}, "baseline_n must be an integer >= 3"),
        ({"drop_ratio": 1.5}, r"drop_ratio must be in \(0, 1\]"),
        ({"drop_ratio": 0.6, "recovery_ratio": 0.5}, "recovery_ratio .* must be >= drop_ratio"),
        ({"depth": [1, 2]}, "depth has 2 values but ts_ns has 5"),
        ({"depth": [1, 2, float("nan"), 1, 1]}, r"depth\[2\] = nan"),
        ({"depth": None}, "give depth"),
        ({"unit": "usd"}, "unit must be"),
    ],
)
def test_crunch_bad_input(kwargs, match):
    args = {"depth": [1.0] * 5, **kwargs}
    with pytest.raises(InvalidInputError, match=match):
        detect_liquidity_crunches([T0 + i for i in range(5)], **args)


def test_crunch_too_short_series_says_why():
    rep = detect_liquidity_crunches([T0, T0 + 1], [1.0, 0.1], baseline_n=5)
    assert rep.episodes == () and "baseline needs 5" in rep.reason

"""The ccxt.pro reconnect back-off: doubling from the initial delay, capped, jittered within
[delay/2, delay] (checked against the formula written out here, over many seeded draws)."""

from __future__ import annotations

import random

from market_liquidity_monitor.data_engine.pro import backoff_delay_s, point_ws_at


def test_backoff_doubles_is_capped_and_jittered_in_half_to_full() -> None:
    rng = random.Random(7)
    for attempt, ceiling in [(0, 0.5), (1, 1.0), (2, 2.0), (5, 16.0), (6, 30.0), (40, 30.0), (10_000, 30.0)]:
        draws = [backoff_delay_s(attempt, 0.5, 30.0, rng) for _ in range(500)]
        assert all(ceiling / 2 <= d <= ceiling for d in draws), attempt
        assert max(draws) - min(draws) > ceiling / 4  # jittered, not a constant


async def test_ws_urls_are_rewritten_to_the_loopback_host_keeping_host_and_path() -> None:
    import ccxt.pro as ccxt_pro

    ex = ccxt_pro.poloniex()
    try:
        original = dict(ex.urls["api"]["ws"])
        assert original["public"] == "wss://ws.poloniex.com/ws/public"  # ccxt 4.5.90
        point_ws_at(ex, original, "http://127.0.0.1:9")
        assert ex.urls["api"]["ws"] == {
            "public": "ws://127.0.0.1:9/ws.poloniex.com/ws/public",
            "private": "ws://127.0.0.1:9/ws.poloniex.com/ws/private",
        }
    finally:
        await ex.close()

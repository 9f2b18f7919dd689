"""The liquidity-history page charts the stored series the API returns (GET /api/history/liquidity)."""

from __future__ import annotations

import httpx

from tests.frontend.test_pages import figures, run_page


def test_liquidity_history_page_charts_the_api_series(api_url):
    at = run_page("liquidity_history")
    api = httpx.get(
        f"{api_url}/api/history/liquidity",
        params={"symbol": "BTC", "venue": "binance", "metric": "depth", "window_bps": 10, "lookback_s": 3600},
        timeout=600,
    ).json()
    (fig,) = figures(at)
    (line,) = [t for t in fig["data"] if t["type"] == "scatter"]
    (series,) = api["series"]
    assert line["y"] == [p["value"] for p in series["points"] if p["value"] is not None]
    assert line["name"] == "binance BTC/USDT"

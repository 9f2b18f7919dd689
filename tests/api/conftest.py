"""API fixtures: one replayed market and one SQLite history shared by every app of the session
(replaying the recordings and importing the candle files once), and apps on two venue sets:

- ``live_client``: venues binance + binancecoinm, whose BTC/ETH books end within a second of each
  other on the recording: status ``live``;
- ``client``: the default venues (binance, binanceusdm, binancecoinm). The USD-M capture stops
  five minutes before the others, so its books are stale at the recording's end: ``degraded``.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from pydantic_ai import models

from market_liquidity_monitor.api.app import create_app
from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.market_data import MarketData

models.ALLOW_MODEL_REQUESTS = False

LIVE_VENUES = ("binance", "binancecoinm")


@pytest.fixture(scope="session")
def api_home(tmp_path_factory):
    return tmp_path_factory.mktemp("mlm-api-home")


@pytest.fixture(scope="session")
def api_market(data_dir) -> MarketData:
    return MarketData.from_recordings(Settings(data_dir=data_dir), data_dir)


def settings_for(data_dir, home, **kw) -> Settings:
    return Settings(data_dir=data_dir, home_dir=home, **kw)


def open_client(settings: Settings, market: MarketData):
    app = create_app(settings, market=market)
    c = TestClient(app)
    c.__enter__()
    assert app.state.readiness.wait(600), "warm-up did not finish"
    return c


@pytest.fixture(scope="session")
def live_client(data_dir, api_home, api_market):
    c = open_client(settings_for(data_dir, api_home, venues=LIVE_VENUES), api_market)
    yield c
    c.__exit__(None, None, None)


@pytest.fixture(scope="session")
def client(data_dir, api_home, api_market):
    c = open_client(settings_for(data_dir, api_home), api_market)
    yield c
    c.__exit__(None, None, None)

from __future__ import annotations

import pytest
from pydantic_ai import models

from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.market_data import MarketData

# Tests never call a real LLM.
models.ALLOW_MODEL_REQUESTS = False


@pytest.fixture(scope="session")
def recorded_market(data_dir) -> MarketData:
    return MarketData.from_recordings(Settings(), data_dir)

"""``/api/status`` says which model answers: a configured provider without a key falls back to the
offline model, and the status names the provider and the reason (without the key's value)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from market_liquidity_monitor.api.app import create_app
from market_liquidity_monitor.config import AgentSettings, Settings
from market_liquidity_monitor.market_data import MarketData


def test_status_names_the_model_and_why_it_fell_back(monkeypatch, data_dir, tmp_path):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("MLM_AGENT__API_KEY", raising=False)
    settings = Settings(
        data_dir=data_dir,
        home_dir=tmp_path,
        venues=("kraken",),
        agent=AgentSettings(model="anthropic:claude-sonnet-4-5"),
    )
    app = create_app(settings, market=MarketData.from_recordings(settings, data_dir))
    with TestClient(app) as client:
        body = client.get("/api/status").json()
    assert body["model"] == {
        "provider": "anthropic",
        "configured_model": "anthropic:claude-sonnet-4-5",
        "effective_model": "offline",
        "reason": "no API key for anthropic: set MLM_AGENT__API_KEY or ANTHROPIC_API_KEY",
        "fallback_model": None,
        "base_url": None,
    }


def test_status_of_the_default_offline_model(data_dir, tmp_path):
    settings = Settings(data_dir=data_dir, home_dir=tmp_path, venues=("kraken",))
    app = create_app(settings, market=MarketData.from_recordings(settings, data_dir))
    with TestClient(app) as client:
        model = client.get("/api/status").json()["model"]
    assert (model["provider"], model["effective_model"], model["reason"]) == ("offline", "offline", None)

"""Which adapter serves which venue. One adapter instance per venue per registry."""

from __future__ import annotations

from market_liquidity_monitor.domain.errors import UnknownVenueError
from market_liquidity_monitor.venues import (
    binance,
    bitfinex,
    bitstamp,
    bybit,
    coinbase,
    gateio,
    gemini,
    kraken,
    kucoin,
    okx,
)

ADAPTER_CLASSES: dict[str, type] = {
    **binance.ADAPTERS,
    **coinbase.ADAPTERS,
    **kraken.ADAPTERS,
    **bybit.ADAPTERS,
    **okx.ADAPTERS,
    **bitstamp.ADAPTERS,
    **gemini.ADAPTERS,
    **kucoin.ADAPTERS,
    **gateio.ADAPTERS,
    **bitfinex.ADAPTERS,
}


class AdapterRegistry:
    """Builds adapters on first use; ``registry(venue)`` is the ``adapter_for`` callable."""

    def __init__(self, classes: dict[str, type] | None = None):
        self._classes = dict(classes or ADAPTER_CLASSES)
        self._instances: dict[str, object] = {}

    def __call__(self, venue: str):
        inst = self._instances.get(venue)
        if inst is None:
            cls = self._classes.get(venue)
            if cls is None:
                raise UnknownVenueError(venue, self._classes)
            inst = self._instances[venue] = cls()
        return inst

    @property
    def venues(self) -> list[str]:
        return sorted(self._classes)

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


#: Venue names users and older captures write, mapped to the ccxt id (``ccxt.exchanges``).
VENUE_ALIASES: dict[str, str] = {
    "gateio": "gate",
    "gate.io": "gate",
    "gate-io": "gate",
    "okex": "okx",
    "coinbasepro": "coinbase",
    "coinbase-pro": "coinbase",
    "binance-futures": "binanceusdm",
    "binance-delivery": "binancecoinm",
}


def canonical_venue(venue: str) -> str:
    """``venue`` as a ccxt id: stripped, lower case, aliases mapped (``gateio`` -> ``gate``)."""
    v = str(venue).strip().lower()
    return VENUE_ALIASES.get(v, v)


class AdapterRegistry:
    """Builds adapters on first use; ``registry(venue)`` is the ``adapter_for`` callable."""

    def __init__(self, classes: dict[str, type] | None = None):
        self._classes = dict(classes or ADAPTER_CLASSES)
        self._instances: dict[str, object] = {}

    def __call__(self, venue: str):
        venue = canonical_venue(venue)
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

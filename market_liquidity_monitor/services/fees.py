"""FeeService: the taker fee of an instrument, from a sourced schedule, the same for every interface.

First match wins, and every fee names its source (``TakerFee.source``):

1. the request's own fees (``fees_bps`` of ``POST /api/compare``/``/api/execute``): "request fees_bps";
2. ``settings.analytics.taker_fee_bps`` (keys ``venue:market`` then ``venue``): the user's account tier;
3. recorded mode: the venue metadata the recordings carry (``cryptofeed/<VENUE>.0.gz``, fetched by the
   recorder before it connected): Bybit ``/v2/public/symbols`` ``taker_fee`` (a fraction, per
   symbol), Gate.io ``/api/v4/spot/currency_pairs`` ``fee`` (percent, per pair), Kraken
   ``/0/public/AssetPairs`` ``fees`` (percent by 30-day volume tier; the first tier, volume 0, is
   the base-tier taker rate). A fee of the recording's own time fits that recording's book;
4. live mode: the venue's ccxt market metadata (``DataEngine.fee_schedule``: ``market["taker"]``,
   public base-tier rates), when the venue's markets load;
5. ``analytics.venues.DEFAULT_TAKER_FEES``: each venue's published base-tier rate, source named;
6. ccxt's exchange-wide public default (``exchange.fees["trading"]["taker"]``; no network).

When none knows the venue, ``taker_fee`` raises ``FeeUnknownError`` saying how to set one; callers
report the venue as unavailable rather than assume 0.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson

from market_liquidity_monitor.analytics.venues import DEFAULT_TAKER_FEES, TakerFee, fee_keys
from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.data_engine.errors import VenueRequestError, VenueUnreachableError
from market_liquidity_monitor.domain.errors import (
    InvalidInputError,
    MLMError,
    UnknownSymbolError,
    UnknownVenueError,
)
from market_liquidity_monitor.domain.instrument import InstrumentId
from market_liquidity_monitor.domain.time import iso_ns

log = logging.getLogger(__name__)

__all__ = ["FeeService", "FeeUnknownError", "read_recorded_fees"]


class FeeUnknownError(InvalidInputError):
    """No source knows the taker fee of a venue; the message says how to set one."""


def _bybit_symbol(name: str) -> str | None:
    """Bybit v2 ``/v2/public/symbols`` name -> unified symbol (``ETHUSDT`` -> ``ETH/USDT:USDT``,
    ``BTCUSD`` -> ``BTC/USD:BTC``; dated inverse futures like ``BTCUSDM21`` are skipped)."""
    n = name.upper()
    if n.endswith("USDT") and len(n) > 4:
        return f"{n[:-4]}/USDT:USDT"
    if n.endswith("USD") and len(n) > 3:
        return f"{n[:-3]}/USD:{n[:-3]}"
    return None


def _kraken_common(code: str) -> str:
    return {"XBT": "BTC", "XDG": "DOGE"}.get(code, code)


def read_recorded_fees(data_dir: Path) -> dict[InstrumentId, tuple[float, str]]:
    """Per-instrument taker fees (bps, source) from the venue metadata in ``data_dir/cryptofeed``.

    Reads ``BYBIT.0.gz``, ``GATEIO.0.gz`` and ``KRAKEN.0.gz`` when present (see the module
    docstring for the fields); other venues' metadata carries no fee. A file that cannot be read is
    logged and skipped. Returns ``{InstrumentId: (taker_bps, source)}``.
    """
    from market_liquidity_monitor.ingest.replay import ReadStats, read_cryptofeed

    out: dict[InstrumentId, tuple[float, str]] = {}
    folder = Path(data_dir) / "cryptofeed"

    def responses(name: str):
        path = folder / name
        if not path.is_file():
            return
        try:
            for rec in read_cryptofeed(path, venue="", stats=ReadStats()):
                if rec.kind == "rest":
                    yield rec, orjson.loads(rec.payload)
        except Exception as exc:  # broken metadata must not break fees: fall through to defaults
            log.warning("could not read fee metadata from %s: %s", path, exc)

    for rec, body in responses("BYBIT.0.gz"):
        when = iso_ns(rec.ts_recv_ns)
        for row in (body or {}).get("result") or []:
            sym = _bybit_symbol(str(row.get("name", "")))
            fee = row.get("taker_fee")
            if sym and fee is not None:
                out[InstrumentId("bybit", sym)] = (
                    round(float(fee) * 1e4, 6),
                    f"bybit /v2/public/symbols taker_fee {fee} (recorded {when}, cryptofeed/BYBIT.0.gz)",
                )
    for rec, body in responses("GATEIO.0.gz"):
        when = iso_ns(rec.ts_recv_ns)
        for row in body if isinstance(body, list) else []:
            base, quote, fee = row.get("base"), row.get("quote"), row.get("fee")
            if base and quote and fee is not None:
                out[InstrumentId("gate", f"{base}/{quote}")] = (
                    round(float(fee) * 100, 6),
                    f"gate /api/v4/spot/currency_pairs fee {fee}% (recorded {when}, cryptofeed/GATEIO.0.gz)",
                )
    for rec, body in responses("KRAKEN.0.gz"):
        when = iso_ns(rec.ts_recv_ns)
        for row in ((body or {}).get("result") or {}).values():
            ws, tiers = row.get("wsname"), row.get("fees")
            if not ws or not tiers or "/" not in ws:
                continue
            base, quote = ws.split("/")
            taker_pct = float(tiers[0][1])
            out[InstrumentId("kraken", f"{_kraken_common(base)}/{_kraken_common(quote)}")] = (
                round(taker_pct * 100, 6),
                f"kraken /0/public/AssetPairs fees tier 0 ({taker_pct}% taker; recorded {when}, "
                "cryptofeed/KRAKEN.0.gz)",
            )
    return out


class FeeService:
    """Taker fees with their source (module docstring). ``engine``: the ccxt ``DataEngine`` (live
    fee schedules and ccxt's exchange-wide defaults); None disables those sources."""

    def __init__(self, settings: Settings, engine: Any = None):
        self.settings = settings
        self.engine = engine
        self._recorded: dict[InstrumentId, tuple[float, str]] | None = None
        self._lock = asyncio.Lock()

    async def _recorded_fees(self) -> dict[InstrumentId, tuple[float, str]]:
        if self.settings.data_dir is None:
            return {}
        if self._recorded is None:
            async with self._lock:
                if self._recorded is None:
                    self._recorded = await asyncio.to_thread(read_recorded_fees, self.settings.data_dir)
        return self._recorded

    async def taker_fee(self, inst: InstrumentId, request: Mapping[str, float] | None = None) -> TakerFee:
        """The taker fee of ``inst`` (first match of the module docstring's order).

        ``request``: per-venue fees given with the request (bps). Raises ``InvalidInputError`` for
        a negative or non-finite fee and ``FeeUnknownError`` when no source knows the venue.
        """
        venue, market = inst.venue, str(inst.market_type)
        if request and venue in request:
            return TakerFee(
                venue=venue, market=market, fee_bps=_check(venue, request[venue]), source="request fees_bps"
            )
        overrides = self.settings.analytics.taker_fee_bps
        for key in fee_keys(venue, market):
            if key in overrides:
                return TakerFee(
                    venue=venue,
                    market=market,
                    fee_bps=_check(key, overrides[key]),
                    source=f"settings analytics.taker_fee_bps[{key!r}]",
                )
        recorded = (await self._recorded_fees()).get(inst)
        if recorded is not None:
            return TakerFee(venue=venue, market=market, fee_bps=recorded[0], source=recorded[1])
        if self.engine is not None and self.settings.data_dir is None:
            try:
                schedule = await self.engine.fee_schedule(venue, inst.symbol)
            except (VenueUnreachableError, VenueRequestError, UnknownSymbolError, UnknownVenueError) as exc:
                log.info("%s: no ccxt fee schedule (%s); using the published table", inst, exc)
            else:
                if schedule.get("taker_bps") is not None and schedule.get("from_market"):
                    return TakerFee(
                        venue=venue,
                        market=market,
                        fee_bps=_check(venue, schedule["taker_bps"]),
                        source=str(schedule["source"]),
                    )
        for key in fee_keys(venue, market):
            if key in DEFAULT_TAKER_FEES:
                fee, source = DEFAULT_TAKER_FEES[key]
                return TakerFee(venue=venue, market=market, fee_bps=fee, source=f"published: {source}")
        taker = self._ccxt_default(venue)
        if taker is not None:
            return TakerFee(
                venue=venue,
                market=market,
                fee_bps=round(taker * 1e4, 6),
                source=f"ccxt {venue} exchange-wide public taker fee (fees.trading.taker = {taker})",
            )
        known = sorted({k.split(":")[0] for k in DEFAULT_TAKER_FEES})
        raise FeeUnknownError(
            f"no taker fee known for venue {venue!r}: set analytics.taker_fee_bps "
            f"(MLM_ANALYTICS__TAKER_FEE_BPS='{{\"{venue}\": <bps>}}'); published rates are known for "
            f"{', '.join(known)}"
        )

    def _ccxt_default(self, venue: str) -> float | None:
        exchange = None
        if self.engine is not None:
            try:
                exchange = self.engine.exchange(venue)
            except MLMError:
                exchange = None
        taker = ((getattr(exchange, "fees", None) or {}).get("trading") or {}).get("taker")
        return None if taker is None else float(taker)

    async def fee_table(
        self, instruments: Iterable[InstrumentId], request: Mapping[str, float] | None = None
    ) -> tuple[dict[str, TakerFee], dict[str, str]]:
        """``({venue: TakerFee}, {venue: why unknown})`` for the instruments' venues.

        ``request`` fees must name venues among ``instruments`` (``InvalidInputError`` otherwise)."""
        insts = list(instruments)
        given = {k.strip().lower(): v for k, v in (request or {}).items()}
        unknown = sorted(set(given) - {i.venue for i in insts})
        if unknown:
            raise InvalidInputError(
                f"fees_bps names venues without a book in this request: {unknown}; "
                f"venues used: {sorted({i.venue for i in insts})}"
            )
        fees, missing = {}, {}
        for inst in insts:
            try:
                fees[inst.venue] = await self.taker_fee(inst, given)
            except FeeUnknownError as exc:
                missing[inst.venue] = str(exc)
        return fees, missing


def _check(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInputError(f"taker fee {key!r} must be a finite number of bps, got {value!r}")
    if not 0 <= value < 10_000:
        raise InvalidInputError(f"taker fee {key!r} must be in [0, 10000) bps, got {value!r}")
    return float(value)

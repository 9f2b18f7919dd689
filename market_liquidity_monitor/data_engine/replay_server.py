"""An offline stand-in for the venues' public REST APIs, good enough for the real ccxt client.

``RestReplayServer`` (``mlm rest-replay DIR``) serves recorded REST responses on a loopback port in
each venue's native format. Point ccxt at it with ``point_exchange_at(exchange, base_url)`` (or
``MLM_DATA_ENGINE__REST_BASE_URL=http://127.0.0.1:N`` for ``DataEngine``): every ccxt URL becomes
``<base_url>/<original host>/<path>``, e.g. ``https://api.binance.com/api/v3/depth?symbol=X`` is
requested as ``<base_url>/api.binance.com/api/v3/depth?symbol=X``.

Coverage with ``../shared/data`` and ccxt 4.5.90 (what ``load_markets`` and the ``fetch_*`` calls
request, read from ccxt's source and checked by tests/integration/data_engine/test_rest_replay*):

============ =================================================== ====================================================
venue (ccxt) endpoint ccxt requests                              served from
============ =================================================== ====================================================
binance      /api/v3/exchangeInfo, /fapi/v1/exchangeInfo,        cryptofeed BINANCE.0 / BINANCE_FUTURES.0 /
             /dapi/v1/exchangeInfo (load_markets: all three)     BINANCE_DELIVERY.0 (2021)
binance      /api/v3/depth, /fapi/v1/depth, /dapi/v1/depth       cryptofeed ``*.http`` snapshots (2021 symbols) and the
                                                                 hftbacktest 1000-level snapshot (BTCUSDT, ETHUSDT spot
                                                                 and USD-M, BTCUSD_PERP, ETHUSD_PERP COIN-M, 2024-08-08);
                                                                 the newest one per symbol, top ``limit`` levels
binance      /api/v3/klines                                      tooyipjee_freqtrade 1m (BTC ETH LTC XRP BCH ADA /USDT),
                                                                 genetrader 5m and 1h (BTC ETH SOL XRP LTC DOGE /USDT)
binance      /fapi/v1/klines, /dapi/v1/klines                    nothing recorded: ``-1121 Invalid symbol.``
binance      /api/v3/trades, /fapi/v1/trades, /dapi/v1/trades    hftbacktest ``@trade`` messages (same symbols as depth)
binance      /api/v3/aggTrades (ccxt's default fetch_trades)     nothing recorded: 404 (DataEngine asks for /trades)
binance      /api/v3/time (and fapi/dapi), /api/v3/ping          the replay clock (below); ``{}``
bitstamp     /api/v2/markets/ (load_markets)                     derived field by field from the recorded
                                                                 /api/v2/trading-pairs-info/ (cryptofeed BITSTAMP.0)
bitstamp     /api/v2/order_book/{pair}/                          cryptofeed BITSTAMP.http (10 pairs incl. ethusd)
gate         /api/v4/spot/currency_pairs                         cryptofeed GATEIO.0
gate         /api/v4/margin/currency_pairs, /futures/{usdt,btc}/ nothing recorded: empty lists (spot markets only)
             contracts, /delivery/usdt/contracts,
             /options/underlyings (load_markets)
gate         /api/v4/spot/order_book                             cryptofeed GATEIO.http (10 pairs incl. BTC_USDC), top
                                                                 ``limit``; ``current`` = capture receive time
kucoin       /api/v2/symbols (load_markets)                      the recorded /api/v1/symbols body (v2 = v1 + fields)
kucoin       /api/v1/market/allTickers, futures                  nothing recorded: empty listings (no ticker fee rates,
             /api/v1/contracts/active (load_markets)             no futures markets)
kucoin       /api/v1/market/orderbook/level2_{20,100}            top 20/100 of the recorded /api/v3/market/orderbook/
                                                                 level2 full book (same response shape)
kraken       /0/public/AssetPairs (load_markets)                 cryptofeed KRAKEN.0; nothing else recorded
okx          /api/v5/public/instruments (5 requests)             cryptofeed OKX.0 (newest of 5 copies each)
gemini       /v1/symbols, /v1/symbols/details/{s}                cryptofeed GEMINI.0
bybit        /v5/market/instruments-info                         not recorded (capture is the retired /v2/public/symbols,
                                                                 served at its path): load_markets fails (BadRequest)
bitfinex     /v2/conf/pub:info:pair,...                          not recorded (captures are other /v2/conf keys, served
                                                                 at their paths): load_markets fails
coinbase...  api.exchange.coinbase.com/products                  not recorded (capture is api.pro.coinbase.com/products,
                                                                 served there): load_markets fails
============ =================================================== ====================================================

Everything else gets the venue's own not-found error (``venues.py`` gives each venue's shapes and
their sources): Binance answers an unknown path with its nginx 404 page and a request for data it has
no recording of (symbol not listed, or listed but not recorded) with HTTP 400
``{"code":-1121,"msg":"Invalid symbol."}`` (ccxt ``BadSymbol``); an unrecorded kline interval of a
recorded symbol with ``-1120 Invalid interval.`` (ccxt ``BadRequest``); Gate with 400
``INVALID_CURRENCY_PAIR`` (``BadSymbol``); KuCoin with 400 ``{"code":"400100","msg":"Unsupported
trading pair."}`` (``BadSymbol``); Bitstamp with 404 ``{"status":"error","reason":"Not found"}``
(ccxt 4.5.90 maps no Bitstamp error to ``BadSymbol``: it raises ``ExchangeError``). An
``X-Replay-Note`` header says why; served answers carry ``X-Replay-Source`` naming the recording.

Semantics:

* Klines follow Binance's spot docs: ``symbol`` and ``interval`` mandatory, ``startTime``/
  ``endTime`` inclusive bounds on the open time, ``limit`` default 500 and capped at 1000, oldest
  first; with neither bound, the most recent candles. Rows are Binance's 12-element arrays: open time,
  O/H/L/C and volume as decimal strings of the stored floats (shortest round-trip text), close time
  = open + interval - 1 ms, then quote volume, trade count, taker-buy base/quote volume and the
  ignored field as ``null``: the files do not have them and they are never made up (ccxt's
  ``parse_ohlcv`` reads indices 0-5).
* Trades: the latest ``limit`` (default 500, max 1000) recorded trades, oldest first;
  ``quoteQty`` = price * qty, exact (Decimal); COIN-M ``baseQty`` is null.
* The replay clock (``/time`` ``serverTime``) is the end of the recordings, not the wall clock: for
  api.binance.com the end (open + interval) of the newest candle served (2024-09-07 02:25 UTC with
  ../shared/data); for fapi/dapi, which serve no candles, the newest recorded trade or snapshot
  time. So "the last 7 days" against the stand-in means the 7 days before the data's end.

Loading: ``from_data_dir`` reads only the small cryptofeed captures (~0.2 s) and lists the other
files; hftbacktest streams and candle files are read on the first request that needs them (in a
worker thread, never on the event loop) and kept (candles as numpy arrays).

Faults for reliability tests: ``fail_status`` (the venue's error body with that status),
``delay_s``, ``retry_after_s`` (429 with ``Retry-After``), ``garbage_body`` (200, non-JSON), for
every host or per host via ``host_faults[host] = Fault(...)``.

This product includes software developed by Bryant Moscon (http://www.bryantmoscon.com/): the
cryptofeed captures served here were recorded with cryptofeed.
"""

from market_liquidity_monitor.data_engine.rest_replay.recordings import (
    RecordedResponse,
    Recordings,
    read_capture,
)
from market_liquidity_monitor.data_engine.rest_replay.server import (
    CoverageRow,
    Fault,
    RestReplayServer,
    coverage,
)

__all__ = [
    "CoverageRow",
    "Fault",
    "RecordedResponse",
    "Recordings",
    "RestReplayServer",
    "coverage",
    "read_capture",
]

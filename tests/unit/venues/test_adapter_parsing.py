"""Each adapter on real frames (copied from ../shared/data/README.md §4.1) and on frames built from
the documented schemas where no recording exists (Coinbase Advanced Trade, Kraken v2)."""

from __future__ import annotations

import json

import orjson
import pytest

from market_liquidity_monitor.domain.events import BookTicker, L2Delta, L2Snapshot, Trade
from market_liquidity_monitor.domain.instrument import InstrumentId
from market_liquidity_monitor.ingest.clock import ReplayClock
from market_liquidity_monitor.ingest.store import BookStore
from market_liquidity_monitor.venues.base import VenueAdapter
from market_liquidity_monitor.venues.bitfinex import Bitfinex
from market_liquidity_monitor.venues.bitstamp import Bitstamp
from market_liquidity_monitor.venues.bybit import Bybit
from market_liquidity_monitor.venues.checksums import kraken_checksum_strings
from market_liquidity_monitor.venues.coinbase import Coinbase
from market_liquidity_monitor.venues.gateio import Gateio
from market_liquidity_monitor.venues.gemini import Gemini
from market_liquidity_monitor.venues.kraken import Kraken
from market_liquidity_monitor.venues.kucoin import Kucoin
from market_liquidity_monitor.venues.okx import Okx
from market_liquidity_monitor.venues.registry import ADAPTER_CLASSES, AdapterRegistry

T = 1_700_000_000_000_000_000


def parse(adapter, frame: str):
    return adapter.parse_message(orjson.loads(frame), T)


@pytest.mark.parametrize("venue", ["coinbase", "kraken", "bybit", "okx", "bitstamp", "gemini", "kucoin", "gate",
                                   "bitfinex"])  # fmt: skip
def test_registry_builds_protocol_conforming_adapters(venue):
    a = AdapterRegistry()(venue)
    assert isinstance(a, VenueAdapter) and a.venue == venue and venue in ADAPTER_CLASSES
    assert a.stream_url(["BTC/USDT"]).startswith("wss://")
    assert all(isinstance(m, str) for m in a.subscribe_messages(["BTC/USDT"]))
    assert a.parse_message({"totally": "unknown"}, T) == []


# ---------------------------------------------------------------------------- Coinbase


def test_coinbase_exchange_frames():
    a = Coinbase(feed="exchange")
    (snap,) = parse(
        a, '{"type":"snapshot","product_id":"SKL-USD","bids":[["0.7898","10"]],"asks":[["0.7911","450"]]}'
    )
    assert isinstance(snap, L2Snapshot) and snap.instrument == InstrumentId("coinbase", "SKL/USD")
    (d,) = parse(a, '{"type":"l2update","product_id":"SKL-USD","changes":[["buy","0.7898","0.0"]],'
                    '"time":"2021-04-17T16:43:41.785392Z"}')  # fmt: skip
    assert isinstance(d, L2Delta) and d.bids == [("0.7898", "0.0")] and d.asks == []
    assert d.ts_event == 1618677821785392000 and d.last_sequence is None
    (t,) = parse(a, '{"type":"match","trade_id":280232,"maker_order_id":"2a0d","taker_order_id":"3c82","side":"sell",'
                    '"size":"985","price":"0.00001305","product_id":"SKL-BTC","sequence":177100030,'
                    '"time":"2021-04-17T16:43:37.089723Z"}')  # fmt: skip
    assert isinstance(t, Trade) and t.side == "buy"  # the maker sold: the taker bought
    assert (t.price, t.size, t.trade_id) == ("0.00001305", "985", "280232")
    assert json.loads(a.subscribe_messages(["SKL/USD"])[0])["channels"][0] == "level2_batch"
    assert a.snapshot_request("SKL/USD") is None


def test_coinbase_advanced_trade_level2_with_sequence_gap():
    """Frames built from the documented ``l2_data`` schema (VENUE_RULES.md §3)."""
    a = Coinbase(feed="advanced")
    store = BookStore(lambda v: a, clock=ReplayClock())

    def frame(seq, kind, updates):
        return {"channel": "l2_data", "client_id": "", "timestamp": "2023-02-09T20:32:50.714964855Z",
                "sequence_num": seq, "events": [{"type": kind, "product_id": "BTC-USD", "updates": [
                    {"side": s, "event_time": "2023-02-09T20:32:50.714964855Z", "price_level": p,
                     "new_quantity": q} for s, p, q in updates]}]}  # fmt: skip

    evs = a.parse_message(
        frame(0, "snapshot", [("bid", "21921.73", "0.06317902"), ("offer", "21921.74", "1.5")]), T
    )
    assert isinstance(evs[0], L2Snapshot) and evs[0].sequence == 0
    assert evs[0].ts_event == 1675974770714964855
    store.on_event(evs[0])
    (d,) = a.parse_message(frame(1, "update", [("bid", "21921.73", "0")]), T)
    assert (d.prev_sequence, d.last_sequence, d.bids) == (0, 1, [("21921.73", "0")])
    store.on_event(d)
    a.parse_message({"channel": "heartbeats", "sequence_num": 2, "events": [{"heartbeat_counter": 7}]}, T)
    (d,) = a.parse_message(frame(3, "update", [("offer", "21922", "2")]), T)
    assert d.prev_sequence == 1  # linked to this book's last frame; seq 2 was a heartbeat
    assert store.on_event(d).value == "applied"
    (d,) = a.parse_message(frame(9, "update", [("offer", "21923", "2")]), T)  # 4..8 lost
    assert a.connection_gaps == 1 and d.prev_sequence == -1
    assert store.on_event(d).value == "gap"
    (t,) = a.parse_message({"channel": "market_trades", "sequence_num": 10, "timestamp": "2023-02-09T20:32:51Z",
                            "events": [{"type": "update", "trades": [{"trade_id": "1", "product_id": "BTC-USD",
                            "price": "21921.7", "size": "0.1", "side": "BUY", "time": "2023-02-09T20:32:51Z"}]}]}, T)  # fmt: skip
    assert isinstance(t, Trade) and t.side == "buy"
    assert json.loads(a.subscribe_messages(["BTC/USD"])[1]) == {"type": "subscribe", "product_ids": ["BTC-USD"],
                                                               "channel": "level2"}  # fmt: skip


# ------------------------------------------------------------------------------ Kraken


def test_kraken_v1_frames_and_depth_from_the_channel_name():
    a = Kraken()
    (s,) = parse(a, '[1920,{"as":[["0.043210","5.0","1618678137.1"]],"bs":[["0.043000","7.0","1618678137.2"]]},'
                    '"book-25","SC/EUR"]')  # fmt: skip
    assert isinstance(s, L2Snapshot) and s.instrument == InstrumentId("kraken", "SC/EUR")
    (d,) = parse(
        a, '[1920,{"a":[["0.043210","0.00000000","1618678137.640504"]],"c":"2745838"},"book-1000","SC/EUR"]'
    )
    assert isinstance(d, L2Delta) and d.checksum == 2745838 and d.asks[0][1] == "0.00000000"
    assert d.ts_event == 1618678137640504000
    assert a._depth[d.instrument] == 1000
    (d,) = parse(a, '[1920,{"a":[["0.042990","364630.28272081","1618678145.920470"]]},{"b":[["0.042990",'
                    '"0.00000000","1618678145.920708"]],"c":"4105471083"},"book-1000","SC/EUR"]')  # fmt: skip
    assert len(d.asks) == 1 and len(d.bids) == 1 and d.checksum == 4105471083
    (t,) = parse(a, '[993,[["354.55000000","1.25690315","1618678145.715785","b","m",""]],"trade","XMR/USD"]')
    assert isinstance(t, Trade) and t.side == "buy" and t.instrument.symbol == "XMR/USD"
    (tk,) = parse(a, '[1668,{"a":["13.253900",35,"35.72892241"],"b":["13.232900",185,"185.18432037"]},'
                     '"ticker","XBT/CHF"]')  # fmt: skip
    assert isinstance(tk, BookTicker) and tk.instrument.symbol == "BTC/CHF" and tk.ask_size == "35.72892241"
    assert parse(a, '{"event":"heartbeat"}') == []


def test_kraken_truncates_to_the_subscribed_depth_before_the_checksum():
    a = Kraken()
    store = BookStore(lambda v: a, clock=ReplayClock())
    asks = [[f"1.{i:02d}0", "1.00000000", "1.0"] for i in range(10, 21)]  # 11 levels, depth 10
    bids = [[f"0.{99 - i:02d}0", "1.00000000", "1.0"] for i in range(11)]
    store.on_event(a.parse_message(["1", {"as": asks[:10], "bs": bids[:10]}, "book-10", "XBT/USD"], T)[0])
    # Insert a better ask: the old 10th ask falls out of scope without a delete message.
    new_asks = [["1.050", "2.00000000", "2.0"], *asks[:9]]
    c = kraken_checksum_strings(new_asks, bids[:10])
    (d,) = a.parse_message(
        ["1", {"a": [["1.050", "2.00000000", "2.0"]], "c": str(c)}, "book-10", "XBT/USD"], T
    )
    store.on_event(d)
    e = store.entry(InstrumentId("kraken", "BTC/USD"))
    assert e.book.quality.checksums_verified == 1 and e.book.quality.checksum_failures == 0
    assert e.book.level_count() == (10, 10)


def test_kraken_v2_exact_numbers_from_raw_text():
    a = Kraken(version=2, depth=10)
    store = BookStore(lambda v: a, clock=ReplayClock())
    bids = [("45283.5", "0.10000000"), ("45283.4", "1.54582015")]
    asks = [("45285.2", "0.00100000"), ("45286.4", "1.54571953")]
    c = kraken_checksum_strings(asks, bids)
    raw = ('{"channel":"book","type":"snapshot","data":[{"symbol":"BTC/USD","bids":['
           + ",".join(f'{{"price":{p},"qty":{q}}}' for p, q in bids) + '],"asks":['
           + ",".join(f'{{"price":{p},"qty":{q}}}' for p, q in asks)
           + f'],"checksum":{c},"timestamp":"2023-10-06T17:35:55.440295Z"}}]}}')  # fmt: skip
    (s,) = a.parse_message(raw, T)
    assert s.asks[0] == ["45285.2", "0.00100000"] and s.checksum == c  # trailing zeros kept
    store.on_event(s)
    q = store.entry(InstrumentId("kraken", "BTC/USD")).book.quality
    assert q.checksums_verified == 1 and q.checksum_failures == 0
    # Decoded to floats (orjson), the trailing zeros are gone: unverifiable without precisions ...
    (s2,) = a.parse_message(orjson.loads(raw), T)
    assert s2.checksum is None and a.unverifiable_checksums == 1
    # ... and exact again once the pair's precisions are known.
    b = Kraken(version=2, precisions={"BTC/USD": (1, 8)})
    (s3,) = b.parse_message(orjson.loads(raw), T)
    assert s3.asks[0] == ["45285.2", "0.00100000"] and s3.checksum == c
    assert json.loads(a.subscribe_messages(["BTC/USD"])[0])["params"] == {"channel": "book", "symbol": ["BTC/USD"],
                                                                          "depth": 10}  # fmt: skip


# ------------------------------------------------------------------------------- Bybit


def test_bybit_legacy_linear_and_inverse():
    a = Bybit()
    (s,) = parse(a, '{"topic":"orderBookL2_25.ADAUSDT","type":"snapshot","data":{"order_book":[{"price":"1.3850",'
                    '"symbol":"ADAUSDT","id":"13850","side":"Buy","size":12851},{"price":"1.3876","symbol":"ADAUSDT",'
                    '"id":"13876","side":"Sell","size":2.5}]},"cross_seq":"916952241","timestamp_e6":"1618677786242538"}')  # fmt: skip
    assert s.instrument == InstrumentId("bybit", "ADA/USDT:USDT") and s.sequence == 916952241
    assert s.bids == [["1.3850", "12851"]] and s.asks == [["1.3876", "2.5"]]
    (d,) = parse(a, '{"topic":"orderBookL2_25.ADAUSDT","type":"delta","data":{"delete":[{"symbol":"ADAUSDT",'
                    '"id":"13850","side":"Buy"}],"update":[{"price":"1.3876","symbol":"ADAUSDT","id":"13876",'
                    '"side":"Sell","size":1}],"insert":[]},"cross_seq":"916955516","timestamp_e6":"1618677795082338"}')  # fmt: skip
    assert d.bids == [["1.3850", "0"]]  # price from the id map: this delete sent none
    assert d.asks == [["1.3876", "1"]] and (d.first_sequence, d.last_sequence) == (None, 916955516)
    (s,) = parse(a, '{"topic":"orderBookL2_25.BTCUSD","type":"snapshot","data":[{"price":"60591.00","symbol":"BTCUSD",'
                    '"id":605910000,"side":"Buy","size":14431}],"cross_seq":5938954538,"timestamp_e6":1618677785357289}')  # fmt: skip
    assert s.instrument.symbol == "BTC/USD:BTC" and a.contract_size("BTC/USD:BTC") == 1.0
    assert a.contract_size("ADA/USDT:USDT") is None


def test_bybit_v5_book_trade_ticker():
    a = Bybit()
    (s,) = parse(a, '{"topic":"orderbook.500.XRPUSDT","type":"snapshot","ts":1733011200691,"data":{"s":"XRPUSDT",'
                    '"b":[["1.9531","6203"]],"a":[["1.9532","100"]],"u":20254869,"seq":130020238981},"cts":1733011200589}')  # fmt: skip
    assert isinstance(s, L2Snapshot) and s.sequence == 20254869 and s.ts_event == 1733011200589000000
    (d,) = parse(a, '{"topic":"orderbook.500.XRPUSDT","type":"delta","ts":1,"data":{"s":"XRPUSDT","b":[],'
                    '"a":[["1.9532","0"]],"u":20254870,"seq":1},"cts":1}')  # fmt: skip
    assert isinstance(d, L2Delta) and d.first_sequence == d.last_sequence == 20254870
    (r,) = parse(a, '{"topic":"orderbook.50.XRPUSDT","type":"delta","ts":1,"data":{"s":"XRPUSDT","b":[],"a":[],'
                    '"u":1,"seq":2},"cts":1}')  # fmt: skip
    assert isinstance(r, L2Snapshot) and r.sequence == 1  # u=1: overwrite
    (t,) = parse(a, '{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1672304486868,"data":[{"T":1672304486865,'
                    '"s":"BTCUSDT","S":"Buy","v":"0.001","p":"16578.50","L":"PlusTick","i":"20f43950","BT":false}]}')  # fmt: skip
    assert t.side == "buy" and t.price == "16578.50"
    assert (
        parse(a, '{"topic":"tickers.BTCUSDT","type":"delta","ts":1,"cs":5,"data":{"symbol":"BTCUSDT"}}') == []
    )
    (tk,) = parse(a, '{"topic":"tickers.BTCUSDT","type":"delta","ts":1,"cs":6,"data":{"symbol":"BTCUSDT",'
                     '"bid1Price":"1","bid1Size":"2","ask1Price":"3","ask1Size":"4"}}')  # fmt: skip
    assert (tk.bid_price, tk.ask_size) == ("1", "4")
    assert parse(a, '{"success":true,"ret_msg":"pong","conn_id":"x","op":"ping"}') == []
    assert a.keepalive.client_ping == '{"op":"ping"}' and a.keepalive.interval_s == 20


# --------------------------------------------------------------------------------- OKX


def test_okx_book_trade_ticker_and_checksum_zero():
    a = Okx()
    (d,) = parse(a, '{"arg":{"channel":"books","instId":"BTC-USD-220527"},"action":"update","data":[{"asks":'
                    '[["30249.4","0","0","0"],["30261","4","0","1"]],"bids":[["30182.6","452","0","1"]],'
                    '"ts":"1652459225464","checksum":-914047754}]}')  # fmt: skip
    assert isinstance(d, L2Delta) and d.checksum == -914047754 and d.instrument.symbol == "BTC/USD:BTC-220527"
    (s,) = parse(a, '{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"snapshot","data":[{"asks":[["8476.98",'
                    '"415","0","13"]],"bids":[["8476.97","256","0","12"]],"ts":"1597026383085","checksum":0,'
                    '"prevSeqId":-1,"seqId":123456}]}')  # fmt: skip
    assert s.checksum is None and s.sequence == 123456  # 0 = not provided
    (u,) = parse(a, '{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[{"asks":[],"bids":[],'
                    '"ts":"1","checksum":0,"prevSeqId":123456,"seqId":123460}]}')  # fmt: skip
    assert (u.prev_sequence, u.last_sequence) == (123456, 123460)
    (t,) = parse(a, '{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT","tradeId":"338476356",'
                    '"px":"30230","sz":"0.033","side":"sell","ts":"1652459233109"}]}')  # fmt: skip
    assert t.side == "sell" and t.ts_event == 1652459233109000000
    assert a.parse_message("pong", T) == [] and a.errors.unknown == 0
    assert a.keepalive.client_ping == "ping" and a.keepalive.interval_s < 30
    assert a.contract_size("BTC/USD:BTC-220527") == 100.0 and a.contract_size("UNI/USD:UNI") == 10.0
    assert a.contract_size("BTC/USDT") is None


def test_okx_checksum_reads_the_original_strings():
    a = Okx()
    store = BookStore(lambda v: a, clock=ReplayClock())
    bids, asks = (
        [["3366.1", "7", "0", "1"], ["3366", "6", "0", "1"]],
        [["3366.8", "9", "0", "1"], ["3368", "8", "0", "1"]],
    )
    frame = {"arg": {"channel": "books", "instId": "BTC-USDT"}, "action": "snapshot",
             "data": [{"asks": asks, "bids": bids, "ts": "1", "checksum": -1881014294}]}  # fmt: skip
    for ev in a.parse_message(frame, T):
        store.on_event(ev)
    q = store.entry(InstrumentId("okx", "BTC/USDT")).book.quality
    assert q.checksums_verified == 1 and q.checksum_failures == 0


# ------------------------------------------------------------- the REST-snapshot venues


def test_bitstamp_frames():
    a = Bitstamp()
    (d,) = parse(a, '{"data":{"timestamp":"1641343699","microtimestamp":"1641343699802982","bids":[["0.88427",'
                    '"0.00000"]],"asks":[]},"channel":"diff_order_book_usdteur","event":"data"}')  # fmt: skip
    assert d.instrument == InstrumentId("bitstamp", "USDT/EUR") and d.last_sequence == 1641343699802982
    (t,) = parse(a, '{"data":{"id":216000477,"timestamp":"1641343699","amount":0.0792,"amount_str":"0.07920000",'
                    '"price":3805.44,"price_str":"3805.44","type":0,"microtimestamp":"1641343699596000"},'
                    '"channel":"live_trades_ethusd","event":"trade"}')  # fmt: skip
    assert (t.side, t.size, t.price) == ("buy", "0.07920000", "3805.44")
    s = a.parse_snapshot({"timestamp": "1641343695", "microtimestamp": "1641343695681418",
                          "bids": [["3802.90", "0.6"]], "asks": [["3803.58", "1"]]}, "ethusd", T)  # fmt: skip
    assert s.sequence == 1641343695681418 and s.instrument.symbol == "ETH/USD"
    assert a.snapshot_request("ETH/USD").url.endswith("/order_book/ethusd")


def test_gemini_first_message_is_the_book():
    a = Gemini()
    evs = parse(a, '{"type":"l2_updates","symbol":"BTCGBP","changes":[["buy","24175.82","0.1"],["sell","24204.04",'
                   '"0.04"]],"trades":[{"type":"trade","symbol":"BTCGBP","event_id":1,"timestamp":1624493368377,'
                   '"price":"24046.83","quantity":"0.00001","side":"buy"}],"auction_events":[]}')  # fmt: skip
    assert isinstance(evs[0], L2Snapshot) and evs[0].instrument.symbol == "BTC/GBP"
    assert isinstance(evs[1], Trade) and evs[1].extra["recent_on_subscribe"]
    (d,) = parse(a, '{"type":"l2_updates","symbol":"GRTUSD","changes":[["buy","0.609","0"]]}')
    assert isinstance(d, L2Delta) and d.bids == [("0.609", "0")]
    assert parse(a, '{"type":"heartbeat","timestamp":1624493666869}') == []


def test_kucoin_frames():
    a = Kucoin()
    (d,) = parse(a, '{"data":{"sequenceStart":1612712745621,"symbol":"FET-BTC","changes":{"asks":[["0.0000078","0",'
                    '"1612712745621"]],"bids":[["0","0","1612712745621"]]},"sequenceEnd":1612712745622},'
                    '"subject":"trade.l2update","topic":"/market/level2:FET-BTC","type":"message"}')  # fmt: skip
    assert (d.first_sequence, d.last_sequence) == (1612712745621, 1612712745622)
    assert d.bids == [] and d.asks == [["0.0000078", "0", "1612712745621"]]  # the "0" price only advanced seq
    (tk,) = parse(a, '{"data":{"sequence":"1613277183873","bestAsk":"242.951","size":"0.08","bestBidSize":"0.68",'
                     '"price":"243.65","time":1619378326330,"bestAskSize":"4.51","bestBid":"242.654"},'
                     '"subject":"trade.ticker","topic":"/market/ticker:BCHSV-USDT","type":"message"}')  # fmt: skip
    assert tk.instrument.symbol == "BCHSV/USDT" and tk.sequence == 1613277183873
    s = a.parse_snapshot({"code": "200000", "data": {"time": 1, "sequence": "1613277183892", "bids": [], "asks": []}},
                         "BCHSV-USDT", T)  # fmt: skip
    assert s.sequence == 1613277183892
    assert a.snapshot_request("BTC/USDT", 100).url.endswith("level2_100")


def test_gateio_frames():
    a = Gateio(clock=lambda: 1619093532)
    (d,) = parse(a, '{"time":1619093558,"channel":"spot.order_book_update","event":"update","result":{"t":1619093558472,'
                    '"e":"depthUpdate","E":1619093558,"s":"NANO_USDT","U":8008158,"u":8008159,"b":[["8.6867","0"]],'
                    '"a":[]}}')  # fmt: skip
    assert d.instrument.symbol == "NANO/USDT" and (d.first_sequence, d.last_sequence) == (8008158, 8008159)
    (t,) = parse(a, '{"time":1619093543,"channel":"spot.trades","event":"update","result":{"id":816995772,'
                    '"create_time":1619093543,"create_time_ms":"1619093543708.2642","side":"sell",'
                    '"currency_pair":"DIS_USDT","amount":"0.2010000000","price":"121.5800000000"}}')  # fmt: skip
    assert t.ts_event == 1619093543708264200 and t.side == "sell"
    s = a.parse_snapshot({"id": 2691446, "asks": [["0.00010396", "5876.967"]], "bids": []}, "HAI_ETH", T)
    assert s.sequence == 2691446
    sub = json.loads(a.subscribe_messages(["BTC/USDC"])[0])
    assert sub == {"time": 1619093532, "channel": "spot.order_book_update", "event": "subscribe",
                   "payload": ["BTC_USDC", "100ms"]}  # fmt: skip
    assert a.snapshot_request("BTC/USDC").params["with_id"] == "true"


def test_bitfinex_frames_and_connection_sequence():
    a = Bitfinex()
    assert parse(a, '{"event":"subscribed","channel":"book","chanId":225206,"symbol":"tDOGUSD","prec":"P0",'
                    '"freq":"F0","len":"100","pair":"DOGUSD"}') == []  # fmt: skip
    parse(a, '{"event":"subscribed","channel":"trades","chanId":9,"symbol":"tBTCUST","pair":"BTCUST"}')
    (s,) = parse(a, "[225206,[[277520,1,0.00383141],[279380,2,-0.0089],[5e-7,1,200000]],17]")
    assert s.bids == [("277520", "0.00383141"), ("0.0000005", "200000")] and s.asks == [("279380", "0.0089")]
    (d,) = parse(a, "[225206,[215350,0,1],18]")
    assert d.bids == [("215350", "0")] and (d.prev_sequence, d.last_sequence) == (17, 18)
    assert parse(a, '[225206,"hb",19]') == []
    (d,) = parse(a, "[225206,[279380,0,-1],21]")  # frame 20 lost
    assert d.asks == [("279380", "0")] and d.prev_sequence == -1 and a.connection_gaps == 1
    (t,) = parse(a, '[9,"te",[670155031,1618677442819,-0.00023057,60410],22]')
    assert t.side == "sell" and t.size == "0.00023057" and t.instrument.symbol == "BTC/USDT"
    assert parse(a, '[9,"tu",[670155031,1618677442819,-0.00023057,60410],23]') == []


# ---------------------------------------------------------------------- symbol mapping


@pytest.mark.parametrize(
    ("adapter", "wire", "unified"),
    [
        (Coinbase(), "SKL-USD", "SKL/USD"),
        (Kraken(), "XBT/CHF", "BTC/CHF"),
        (Kraken(), "XDG/USD", "DOGE/USD"),
        (Kraken(version=2), "BTC/USD", "BTC/USD"),
        (Okx(), "BTC-USDT", "BTC/USDT"),
        (Okx(), "BTC-USD-220527", "BTC/USD:BTC-220527"),
        (Okx(), "UNI-USD-SWAP", "UNI/USD:UNI"),
        (Okx(), "BTC-USDT-SWAP", "BTC/USDT:USDT"),
        (Bybit(), "ETHUSDT", "ETH/USDT:USDT"),
        (Bybit(), "BTCUSD", "BTC/USD:BTC"),
        (Bybit(category="spot"), "BTCUSDT", "BTC/USDT"),
        (Bitstamp(), "ethusd", "ETH/USD"),
        (Gemini(), "LINKETH", "LINK/ETH"),
        (Kucoin(), "BCHSV-USDT", "BCHSV/USDT"),
        (Gateio(), "BTC_USDC", "BTC/USDC"),
        (Gateio(), "QTUM3S_USDT", "QTUM3S/USDT"),
        (Bitfinex(), "tBTCUSD", "BTC/USD"),
        (Bitfinex(), "tBTCUST", "BTC/USDT"),
        (Bitfinex(), "tTESTBTC:TESTUSD", "TESTBTC/TESTUSD"),
    ],
)
def test_symbol_round_trip(adapter, wire, unified):
    assert adapter.unified_symbol(wire) == unified
    assert adapter.venue_symbol(unified) == wire


def test_stateful_adapters_reset_on_a_new_connection():
    a = Bitfinex()
    parse(a, '{"event":"subscribed","channel":"book","chanId":1,"symbol":"tBTCUSD","pair":"BTCUSD"}')
    parse(a, "[1,[[100,1,1],[101,1,-1]],500]")
    parse(a, '{"event":"info","version":2,"serverId":"x","platform":{"status":1}}')  # reconnected
    parse(a, '{"event":"subscribed","channel":"book","chanId":7,"symbol":"tBTCUSD","pair":"BTCUSD"}')
    (s,) = parse(a, "[7,[[100,1,1],[101,1,-1]],1]")
    (d,) = parse(a, "[7,[100,0,1],2]")
    assert a.connection_gaps == 0 and isinstance(s, L2Snapshot) and d.prev_sequence == 1
    c = Coinbase()
    c.parse_message({"channel": "heartbeats", "sequence_num": 41, "events": []}, T)
    c.parse_message({"channel": "heartbeats", "sequence_num": 0, "events": []}, T)
    assert c.connection_gaps == 0

"""The recording format: lossless lines, one gzip member per flush, crash-safe reading."""

from __future__ import annotations

import gzip

import pytest

from market_liquidity_monitor.ingest.recorder import (
    RecordingHeader,
    RecordWriter,
    read_headers,
    read_recording,
)
from market_liquidity_monitor.ingest.replay import ReadStats


class Tick:
    def __init__(self):
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _header(venue="binance"):
    return RecordingHeader(
        venue=venue, symbols=["BTC/USDT"], venue_symbols=["BTCUSDT"], started_ns=1, url="ws://x"
    )


def test_round_trip_is_byte_exact(tmp_path):
    path = tmp_path / "r.gz"
    frame = b'{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","U":1,"u":2,"b":[],"a":[]}}'
    odd = b'{"a":\n1}'  # a line break inside a frame: stored as base64, returned intact
    rest = b'{"lastUpdateId":5,"bids":[["1.0","2"]],"asks":[]}'
    with RecordWriter(path, _header()) as w:
        w.on_open(10, "ws://127.0.0.1:1/stream?streams=a")
        w.on_frame(11, frame)
        w.on_frame(12, odd)
        w.on_frame(13, "text frame")
        w.on_rest(14, "BTCUSDT", rest)
        w.on_rest(15, "BTCUSDT", b"{\r\n}")
        w.on_close(16, "silence\nno data")
    recs = list(read_recording(path))
    assert [(r.ts_recv_ns, r.kind, r.payload, r.venue_symbol) for r in recs] == [
        (11, "ws", frame, None),
        (12, "ws", odd, None),
        (13, "ws", b"text frame", None),
        (14, "rest", rest, "BTCUSDT"),
        (15, "rest", b"{\r\n}", "BTCUSDT"),
    ]
    assert all(r.venue == "binance" for r in recs)
    assert [r.seq for r in recs] == sorted(r.seq for r in recs)
    marks = [r for r in read_recording(path, include_markers=True) if r.kind in ("open", "close")]
    assert [(m.kind, m.payload) for m in marks] == [
        ("open", b"ws://127.0.0.1:1/stream?streams=a"),
        ("close", b"silence no data"),
    ]
    # A standard gzip reader sees the same text (members concatenate).
    text = gzip.decompress(path.read_bytes())
    assert text.startswith(b"#mlm-record {") and b"\n11 ws " + frame + b"\n" in text


def test_a_member_is_written_at_least_every_interval(tmp_path):
    path = tmp_path / "r.gz"
    tick = Tick()
    w = RecordWriter(path, _header(), flush_interval_s=1.0, time_fn=tick)
    w.on_frame(1, b"{}")
    tick.t = 0.5
    w.on_frame(2, b"{}")
    assert w.stats.members == 0 and path.stat().st_size == 0
    tick.t = 1.0
    w.on_frame(3, b"{}")  # the interval passed: this write flushes one member
    assert w.stats.members == 1
    # A crash now (no close()) loses nothing written before the flush.
    assert [r.ts_recv_ns for r in read_recording(path)] == [1, 2, 3]
    tick.t = 1.4
    w.on_frame(4, b"{}")
    tick.t = 2.1
    w.maybe_flush()  # what run_flusher() does in a quiet period
    assert w.stats.members == 2
    assert [r.ts_recv_ns for r in read_recording(path)] == [1, 2, 3, 4]
    w.close()
    with pytest.raises(ValueError):
        w.on_frame(5, b"{}")


def test_truncated_final_member_is_dropped_cleanly(tmp_path):
    path = tmp_path / "r.gz"
    tick = Tick()
    w = RecordWriter(path, _header(), flush_interval_s=1.0, time_fn=tick)
    for i in range(10):
        w.on_frame(i, b'{"i":%d}' % i)
    w.flush()
    size_one = path.stat().st_size
    for i in range(10, 15):
        w.on_frame(i, b'{"i":%d}' % i)
    w.flush()
    w.close()
    data = path.read_bytes()
    for cut in (size_one + 1, size_one + 10, len(data) - 1):
        path.write_bytes(data[:cut])
        rs = ReadStats()
        got = [r.ts_recv_ns for r in read_recording(path, rs)]
        assert got == list(range(10)), cut
        assert rs.corrupt == 1 and "truncated" in rs.corrupt_examples[0]
    # Python's own gzip reader fails on the same file; ours keeps the complete members.
    with pytest.raises(EOFError):
        gzip.decompress(data[: len(data) - 1])


def test_garbage_after_the_members_stops_the_reader(tmp_path):
    path = tmp_path / "r.gz"
    with RecordWriter(path, _header()) as w:
        w.on_frame(1, b"{}")
    with path.open("ab") as fh:
        fh.write(b"\x00" * 64)  # e.g. a preallocated tail after a power loss
    rs = ReadStats()
    assert [r.ts_recv_ns for r in read_recording(path, rs)] == [1]
    assert rs.corrupt == 1


def test_appended_sessions_keep_their_own_header(tmp_path):
    path = tmp_path / "r.gz"
    with RecordWriter(path, _header("binance")) as w:
        w.on_frame(1, b"{}")
    with RecordWriter(path, _header("binanceusdm")) as w:
        w.on_frame(2, b"{}")
    assert [h.venue for h in read_headers(path)] == ["binance", "binanceusdm"]
    assert [(r.ts_recv_ns, r.venue) for r in read_recording(path)] == [(1, "binance"), (2, "binanceusdm")]


def test_plain_text_recording_and_bad_lines(tmp_path):
    path = tmp_path / "r.mlm"
    with RecordWriter(path, _header()) as w:
        w.on_frame(1, b"{}")
        w.on_rest(2, "BTCUSDT", b"{}")
    with path.open("ab") as fh:
        fh.write(b'notanumber ws {}\n3 weird {}\n4 ws {"cut')  # bad ts, unknown kind, unterminated
    rs = ReadStats()
    recs = list(read_recording(path, rs))
    assert [(r.ts_recv_ns, r.kind) for r in recs] == [(1, "ws"), (2, "rest")]
    assert rs.corrupt == 3


def test_records_before_any_header_are_rejected(tmp_path):
    path = tmp_path / "r.mlm"
    path.write_bytes(b"1 ws {}\n")
    rs = ReadStats()
    assert list(read_recording(path, rs)) == []
    assert rs.corrupt == 1
    bad = RecordingHeader.from_line(_header().to_line().rstrip())
    assert bad.venue == "binance"
    with pytest.raises(ValueError):
        RecordingHeader.from_line(b'#mlm-record {"version":99,"venue":"x"}')

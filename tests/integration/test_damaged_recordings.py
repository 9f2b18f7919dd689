"""Damaged recordings are read through one guarded path: a bit-flipped or truncated gzip, a 0-byte
file, and frames whose levels are NaN/Infinity, negative, numeric or one-element are skipped and
counted per file (``ReadStats.files``, ``/api/status`` ``recordings``), the damaged book is
discarded until a snapshot (never trusted blind), and every other book keeps answering with exactly
the figures of the undamaged data. Issue 11, item 2 (before: a flipped byte raised zlib.error out
of replay, a NaN level crashed it, and ``mlm serve`` answered 500 for good).

The damage is made on copies in ``tmp_path`` of real captures from ../shared/data.
"""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from market_liquidity_monitor.api.app import create_app
from market_liquidity_monitor.cli import app as cli_app
from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.domain.errors import BookNotReadyError
from market_liquidity_monitor.ingest.replay import ReadStats, read_cryptofeed
from market_liquidity_monitor.market_data import MarketData

BAD_LEVELS = {
    "nan_price": b'"b":[["NaN","5.0"]]',
    "infinite_price": b'"b":[["Infinity","5.0"]]',
    "numeric_level": b'"b":[123]',
    "one_element_level": b'"b":[["0.35"]]',
    "negative_size": b'"b":[["0.35","-5"]]',
    "null_price": b'"b":[[null,"1"]]',
    "nan_size": b'"b":[["0.35","nan"]]',
}
BINANCE_FILES = ("BINANCE.0.gz", "BINANCE.http.0.0.gz", "BINANCE.ws.1.0.gz")


def _copy(src: Path, dst: Path) -> None:
    shutil.copy(src, dst)
    dst.chmod(0o644)


def _with_bad_level(ws: Path, bad: bytes) -> None:
    """Replace the bids of one NKNUSDT depth update, after the book synced, with ``bad``."""
    lines = gzip.decompress(ws.read_bytes()).splitlines()
    i = next(n for n, line in enumerate(lines) if n > 200 and b"NKNUSDT" in line and b'"b":[[' in line)
    line = lines[i]
    lines[i] = line.replace(line[line.index(b'"b":[') : line.index(b',"a":')], bad)
    ws.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))


def test_bit_flips_anywhere_in_a_gzip_recording_are_counted_never_raised(data_dir: Path, tmp_path: Path):
    src = (data_dir / "cryptofeed" / "BINANCE.ws.1.0.gz").read_bytes()
    p = tmp_path / "BINANCE.ws.1.0.gz"
    unreadable = 0
    for pos in range(10, len(src), 211):
        b = bytearray(src)
        b[pos] ^= 0x5A
        p.write_bytes(bytes(b))
        stats = ReadStats()
        records = list(read_cryptofeed(p, "binance", stats))  # before: zlib.error escaped
        assert stats.records == len(records)
        if stats.files:
            unreadable += stats.files[p.name].unreadable is not None
    assert unreadable > 0  # most flips break the deflate stream or its CRC: reported as unreadable


@pytest.mark.parametrize("kind", sorted(BAD_LEVELS))
def test_a_bad_level_discards_only_its_book(data_dir: Path, tmp_path: Path, kind: str):
    cf = tmp_path / "cryptofeed"
    cf.mkdir()
    for f in BINANCE_FILES:
        _copy(data_dir / "cryptofeed" / f, cf / f)
    pristine = MarketData.from_recordings(Settings(data_dir=tmp_path), tmp_path)
    pristine.load_all()
    _with_bad_level(cf / "BINANCE.ws.1.0.gz", BAD_LEVELS[kind])
    md = MarketData.from_recordings(Settings(data_dir=tmp_path), tmp_path)
    md.load_all()  # before: ValueError / TypeError / IndexError out of replay
    entry = md.store.entry(next(i for i in md.store.instruments() if i.symbol == "NKN/USDT"))
    assert entry.book.quality.rejected_updates == 1 and not entry.book.quality.synced
    with pytest.raises(BookNotReadyError, match="not synced"):
        md.store.view("binance", "NKN/USDT")  # no snapshot follows in this capture: said, not trusted
    report = {r["file"]: r for r in md.read_stats.report()}
    assert report["BINANCE.ws.1.0.gz"]["rejected_updates"] == 1
    for inst in pristine.store.instruments():  # every other book: the undamaged figures, level by level
        if inst.symbol == "NKN/USDT":
            continue
        a, b = pristine.store.view(inst.venue, inst.symbol), md.store.view(inst.venue, inst.symbol)
        for side in ("bid_prices", "bid_sizes", "ask_prices", "ask_sizes"):
            assert np.array_equal(getattr(a, side), getattr(b, side)), (inst, side)


@pytest.fixture(scope="module")
def damaged_dir(data_dir: Path, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("damaged")
    cf = root / "cryptofeed"
    shutil.copytree(data_dir / "cryptofeed", cf)
    for f in cf.iterdir():
        f.chmod(0o644)
    k = cf / "KRAKEN.ws.50.0.gz"
    b = bytearray(k.read_bytes())
    b[len(b) // 2] ^= 0x5A  # mid-stream: garbage lines from there on, then a failed CRC
    k.write_bytes(bytes(b))
    (cf / "GEMINI.ws.1.0.gz").write_bytes(b"")  # 0-byte recording
    _with_bad_level(cf / "BINANCE.ws.1.0.gz", BAD_LEVELS["nan_price"])
    return root


def test_the_api_keeps_answering_and_names_the_damaged_files(damaged_dir: Path, tmp_path: Path):
    settings = Settings(data_dir=damaged_dir, home_dir=tmp_path, venues=("binance", "coinbase", "okx"))
    with TestClient(create_app(settings)) as c:
        assert c.app.state.readiness.wait(300)
        # Recordings load when first asked for: ask for Kraken's (its file is damaged)
        assert c.get("/api/orderbook/kraken/BTC").status_code in (200, 404, 503)
        r = c.get("/api/status")
        assert r.status_code == 200, r.text  # before: 404 for good after a 0-byte recording
        rec = r.json()["recordings"]
        files = {f["file"]: f for f in rec["files_with_problems"]}
        assert files["KRAKEN.ws.50.0.gz"]["corrupt_lines"] >= 1
        assert files["BINANCE.ws.1.0.gz"]["rejected_updates"] == 1
        assert rec["rejected_updates"] >= 1 and rec["corrupt_lines"] >= 1
        ok = c.get("/api/orderbook/coinbase/SKL/USD?levels=5")
        assert ok.status_code == 200, ok.text
        bad = c.get("/api/orderbook/binance/NKN/USDT")
        assert bad.status_code == 503 and "not synced" in bad.text
        route = c.post("/api/execute", json={"symbol": "BTC", "side": "buy", "size": 1})
        assert route.status_code == 200, route.text


def test_mlm_replay_reports_the_damage_and_exits_0(damaged_dir: Path):
    cf = damaged_dir / "cryptofeed"
    files = [str(cf / f) for f in ("BINANCE.http.0.0.gz", "BINANCE.ws.1.0.gz", "KRAKEN.ws.50.0.gz")]
    res = CliRunner().invoke(cli_app, ["replay", *files, "--json"])
    assert res.exit_code == 0, res.output  # before: exit 1 on the flipped byte
    out = json.loads(res.stdout)
    problems = {f["file"]: f for f in out["files_with_problems"]}
    assert out["rejected_updates"] == 1 and problems["BINANCE.ws.1.0.gz"]["rejected_updates"] == 1
    assert problems["KRAKEN.ws.50.0.gz"]["corrupt_lines"] >= 1

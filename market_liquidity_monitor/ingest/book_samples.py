"""Sample recorded spot books during their replay, for calibrating book models.

``sample_recorded_books(data_dir)`` replays each hftbacktest Binance spot recording
(``hftbacktest/spot/<symbol>_<date>.gz``: BTC/USDT and ETH/USDT, 2024-08-08 23:54 -> 2024-08-09
00:05 UTC) through the same ``Replayer`` / ``BookStore`` path as everything else and takes a
``BookView`` of the synced book every ``every_s`` seconds of recording (receive) time, skipping
the first ``warmup_s`` seconds after the book first synced.

Why the warm-up (measured on these files, docs/analytics.md "Book completeness"): the recording's
REST snapshot holds 1000 levels per side, which on BTC/USDT (0.01 tick) reaches only ~33 bps below
mid on the bid side; levels beyond it enter the book only when a diff-depth update touches them.
A book built from the diffs alone holds 59-85 % of the true BTC/USDT depth within 20-50 bps after
30-120 s and >= 99.9 % within 30 bps (>= 96 % within 50 bps) after 240 s; on ETH/USDT >= 97.7 %
within 50 bps after 240 s. Views taken after 240 s are therefore complete within the 50 bps of the
calibration grid (``analytics.calibration.GRID_BPS``) wherever the mid has moved.

``recorded_model_set(data_dir)`` builds the ``analytics.calibration.BookModelSet`` from those
samples and the genetrader Binance spot 5m candles of the same assets
(``genetrader/binance/<BASE>_USDT-5m.feather``, 2024-01-01 -> 2024-09-06), which cover the
recordings with months of history before them.

The other recorded spot books (cryptofeed captures of NKN/USDT, BLZ/ETH, Bitstamp, Kraken...) are
~30 s of symbols and times for which no candles exist (../shared/data/README.md), so they cannot be
calibrated against market conditions; they are not sampled.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pandas as pd

from market_liquidity_monitor.analytics.calibration import BookModelSet, build_model_set
from market_liquidity_monitor.book.view import BookView
from market_liquidity_monitor.domain.errors import MLMError
from market_liquidity_monitor.domain.instrument import InstrumentId
from market_liquidity_monitor.ingest.clock import ReplayClock
from market_liquidity_monitor.ingest.replay import RecordingGroup, Replayer, discover
from market_liquidity_monitor.ingest.store import BookStore
from market_liquidity_monitor.venues.registry import AdapterRegistry

__all__ = [
    "BOOK_WARMUP_S",
    "SAMPLE_EVERY_S",
    "recorded_candles",
    "recorded_model_set",
    "recorded_spot_groups",
    "sample_recorded_books",
]

#: Seconds of recording after the book first synced that are skipped (module docstring).
BOOK_WARMUP_S = 240.0
#: Default sampling period, seconds of recording time.
SAMPLE_EVERY_S = 2.0


def recorded_spot_groups(data_dir: Path) -> list[RecordingGroup]:
    """The full-depth spot recordings under ``data_dir`` that can be sampled (hftbacktest Binance spot)."""
    return [g for g in discover(Path(data_dir)) if g.fmt == "hftbacktest" and g.venue == "binance"]


def sample_recorded_books(
    data_dir: Path,
    every_s: float = SAMPLE_EVERY_S,
    warmup_s: float = BOOK_WARMUP_S,
    symbols: set[str] | None = None,
) -> dict[InstrumentId, list[BookView]]:
    """Views of each recorded spot book every ``every_s`` s of recording time after ``warmup_s`` s.

    ``symbols``: unified symbols to keep (e.g. ``{"ETH/USDT"}``; None = all). Returns instrument ->
    views in time order (instruments whose book never synced are absent). Raises ``ValueError`` for
    ``every_s <= 0`` or ``warmup_s < 0``. Corrupt lines are skipped by the replay, never raised.
    """
    if not every_s > 0 or not warmup_s >= 0:
        raise ValueError(f"every_s must be > 0 and warmup_s >= 0 seconds; got {every_s!r}, {warmup_s!r}")
    every_ns, warm_ns = int(every_s * 1e9), int(warmup_s * 1e9)
    registry = AdapterRegistry()
    out: dict[InstrumentId, list[BookView]] = {}
    for g in recorded_spot_groups(data_dir):
        inst = registry(g.venue).instrument(g.venue_symbols[0])
        if symbols is not None and inst.symbol not in symbols:
            continue
        clock = ReplayClock()
        store = BookStore(registry, clock=clock)
        views: list[BookView] = []
        state = {"synced_at": None, "next": None}

        def on_record(rec, _events, inst=inst, store=store, views=views, state=state) -> None:
            t = rec.ts_recv_ns
            if state["synced_at"] is None:
                with contextlib.suppress(MLMError):
                    if store.entry(inst).book.quality.synced:
                        state["synced_at"] = t
                        state["next"] = t + warm_ns
                return
            if t < state["next"]:
                return
            with contextlib.suppress(MLMError):  # resyncing after a gap: no view now
                views.append(store.view(inst.venue, inst.symbol))
                state["next"] = t + every_ns

        Replayer(store, registry, clock=clock).run(g.records(), on_record=on_record)
        if views:
            out[inst] = views
    return out


def recorded_candles(data_dir: Path, symbol: str, timeframe: str = "5m") -> pd.DataFrame:
    """The genetrader Binance spot candles of ``symbol`` (``"SOL/USDT"``) as a frame indexed by UTC
    open time. Raises ``FileNotFoundError`` naming the file, or ``ValueError`` for a symbol that is
    not ``BASE/USDT`` with an alphanumeric base or a timeframe other than 5m/1h."""
    base, _, quote = symbol.partition("/")
    if quote != "USDT" or not base.isalnum() or timeframe not in ("5m", "1h"):
        raise ValueError(f"recorded candles exist for BASE/USDT at 5m or 1h; got {symbol!r} {timeframe!r}")
    path = Path(data_dir) / "genetrader" / "binance" / f"{base.upper()}_USDT-{timeframe}.feather"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no recorded candles for {symbol} {timeframe}")
    return pd.read_feather(path).set_index("date")


def recorded_model_set(
    data_dir: Path,
    every_s: float = SAMPLE_EVERY_S,
    warmup_s: float = BOOK_WARMUP_S,
    calibration_fraction: float = 0.5,
) -> BookModelSet:
    """``build_model_set`` on every recorded spot book (``sample_recorded_books``) with its recorded
    5m candles (``recorded_candles``). Raises what those raise."""
    books = sample_recorded_books(data_dir, every_s=every_s, warmup_s=warmup_s)
    by_symbol = {inst.symbol: views for inst, views in books.items()}
    candles = {sym: recorded_candles(data_dir, sym) for sym in by_symbol}
    return build_model_set(by_symbol, candles, calibration_fraction=calibration_fraction, every_s=every_s)

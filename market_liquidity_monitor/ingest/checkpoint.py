"""Checkpoints of replayed book state: exact images of ``BookStore`` entries, and a disk cache of
them so a second process on the same recordings does not replay them again.

A checkpoint of one entry holds the book's scaled integer levels (``L2Book.state``), its sync
state (sequence-rule state, counters, deltas buffered while waiting for a snapshot), the last
ticker, the recent trades and the message count: restoring it gives the same book, the same
quality counters and the same answers as the replay that produced it.

Disk cache (``CheckpointCache``): one file per recording group and settings, named by a SHA-256
key over ``FORMAT_VERSION``, the group, the settings that shape the state (depth windows, stale
limit, buffer size, depth sampling) and each file's path, size, mtime and content hash
(``recording_key``). A changed file, setting or format gives another key: the old file is never
read. Each file is one header line (JSON: format version, key, payload SHA-256, payload length)
then the zlib-compressed JSON payload. A file whose header, digest, JSON or content does not check
out is ignored, counted (``CheckpointStats.corrupt``), deleted and rebuilt by replaying; nothing in
it is used before it passed every check, and it is data only (JSON, never pickle).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import zlib
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from market_liquidity_monitor.book.sync import SyncCounters, SyncState
from market_liquidity_monitor.domain.events import BookTicker, L2Delta, Trade
from market_liquidity_monitor.domain.instrument import InstrumentId

if TYPE_CHECKING:
    from market_liquidity_monitor.ingest.replay import RecordingGroup
    from market_liquidity_monitor.ingest.store import BookEntry, BookStore

log = logging.getLogger(__name__)

#: Bump when the layout of a checkpoint, or what a replay puts into a book, changes: every cached
#: file of an older version then has another key and is rebuilt.
FORMAT_VERSION = 3  # 3: read stats carry rejected updates and per-file problems
_MAGIC = b"mlm-book-checkpoint"

__all__ = [
    "FORMAT_VERSION",
    "CheckpointCache",
    "CheckpointStats",
    "default_cache_dir",
    "entry_state",
    "recording_key",
    "restore_entry",
]


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/mlm/checkpoints``, else ``~/.cache/mlm/checkpoints`` (the XDG base
    directory rule, https://specifications.freedesktop.org/basedir-spec/)."""
    base = os.environ.get("XDG_CACHE_HOME")
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".cache"
    return root / "mlm" / "checkpoints"


# ------------------------------------------------------------------ entry images


def _delta_state(d: L2Delta) -> list:
    return [d.bids, d.asks, d.first_sequence, d.last_sequence, d.prev_sequence, d.ts_event, d.ts_recv,
            d.checksum]  # fmt: skip


def entry_state(e: BookEntry) -> dict:
    """A JSON-safe image of one store entry (book, sync state, ticker, trades, counters)."""
    s = e.sync
    t = e.ticker
    return {
        "venue": e.instrument.venue,
        "symbol": e.instrument.symbol,
        "book": e.book.state(),
        "sync": {
            "state": str(s.state),
            "counters": asdict(s.counters),
            "needs_snapshot": s.needs_snapshot,
            "first_pending": s._first_pending,
            "buffer": [_delta_state(d) for d in s.buffer],
        },
        "ticker": None
        if t is None
        else [t.bid_price, t.bid_size, t.ask_price, t.ask_size, t.sequence, t.ts_event, t.ts_recv],
        "trades": [[x.price, x.size, x.side, x.trade_id, x.ts_event, x.ts_recv, x.extra] for x in e.trades],
        "messages": e.messages,
        "checksum_failed": e.checksum_failed,
    }


def restore_entry(store: BookStore, d: dict) -> BookEntry:
    """Put the image ``d`` (``entry_state``) into ``store`` as its instrument's entry and return it.
    Raises ``ValueError``/``KeyError``/``TypeError`` for an image ``entry_state`` cannot produce."""
    inst = InstrumentId(str(d["venue"]), str(d["symbol"]))
    e = store.entry(inst)
    e.book.restore_state(d["book"])
    s = d["sync"]
    e.sync.state = SyncState(s["state"])
    e.sync.counters = SyncCounters(**{k: int(v) for k, v in s["counters"].items()})
    e.sync.needs_snapshot = bool(s["needs_snapshot"])
    e.sync._first_pending = bool(s["first_pending"])
    e.sync.buffer = deque((L2Delta(inst, *row) for row in s["buffer"]), maxlen=e.sync.buffer.maxlen)
    t = d["ticker"]
    e.ticker = None if t is None else BookTicker(inst, *t)
    e.trades = deque((Trade(inst, *row) for row in d["trades"]), maxlen=e.trades.maxlen)
    e.messages = int(d["messages"])
    e.checksum_failed = bool(d["checksum_failed"])
    return e


# ------------------------------------------------------------------ keys


_file_hashes: dict[tuple[str, int, int], str] = {}


def _file_digest(path: Path) -> tuple[int, int, str]:
    """``(size, mtime_ns, sha256 hex)`` of a file; the hash is remembered per size and mtime
    within the process."""
    st = path.stat()
    k = (str(path), st.st_size, st.st_mtime_ns)
    h = _file_hashes.get(k)
    if h is None:
        with path.open("rb") as fh:
            h = hashlib.file_digest(fh, "sha256").hexdigest()
        _file_hashes[k] = h
    return st.st_size, st.st_mtime_ns, h


def recording_key(group: RecordingGroup, params: dict[str, Any]) -> str:
    """SHA-256 hex of ``FORMAT_VERSION``, the group (name, format, venue, symbols), ``params``
    (the settings that shape the replayed state) and every file's resolved path, size, mtime (ns)
    and content SHA-256. Raises ``OSError`` when a file cannot be read."""
    files = []
    for f in group.files:
        size, mtime, digest = _file_digest(Path(f))
        files.append([str(Path(f).resolve()), size, mtime, digest])
    material = {
        "format_version": FORMAT_VERSION,
        "group": [group.name, group.fmt, group.venue, list(group.venue_symbols)],
        "params": params,
        "files": files,
    }
    return hashlib.sha256(orjson.dumps(material, option=orjson.OPT_SORT_KEYS)).hexdigest()


# ------------------------------------------------------------------ disk cache


@dataclass(slots=True)
class CheckpointStats:
    """What the disk cache did in this process: ``hits`` (loaded, replay skipped), ``misses`` (no
    file for the key), ``written``, ``corrupt`` (a file failed its checks: ignored, deleted,
    rebuilt), ``errors`` (a file could not be read or written; replayed without the cache),
    ``unwitnessed`` (a good file not used: the store's observer - the liquidity history - lacks
    rows its replay wrote, so the recording was replayed), ``corrupt_examples`` (up to 5
    ``"file: why"``)."""

    hits: int = 0
    unwitnessed: int = 0
    misses: int = 0
    written: int = 0
    corrupt: int = 0
    errors: int = 0
    corrupt_examples: list[str] = field(default_factory=list)


class CheckpointCache:
    """Checkpoint files under ``directory`` (created on first write), one per key (module docstring)."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.stats = CheckpointStats()

    def path_for(self, key: str) -> Path:
        if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
            raise ValueError("a checkpoint key is a SHA-256 hex digest")
        return self.directory / f"books-{key}.ckpt"

    def load(self, key: str) -> dict | None:
        """The payload stored under ``key``, or None (no file, or a file that failed its checks:
        counted in ``stats``, deleted, and the caller replays)."""
        path = self.path_for(key)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            self.stats.misses += 1
            return None
        except OSError as exc:
            self.stats.errors += 1
            log.warning("checkpoint %s unreadable (%s); replaying", path, exc)
            return None
        try:
            payload = self._decode(raw, key)
        except (ValueError, KeyError, TypeError, zlib.error, orjson.JSONDecodeError) as exc:
            self._corrupt(path, f"{type(exc).__name__}: {exc}")
            return None
        self.stats.hits += 1
        return payload

    def unused(self) -> None:
        """A payload ``load`` returned was not used (the caller replays): an ``unwitnessed``
        count, not a hit."""
        self.stats.hits -= 1
        self.stats.unwitnessed += 1

    def corrupt(self, key: str, why: str) -> None:
        """A payload that decoded but could not be restored: count it and delete the file."""
        self._corrupt(self.path_for(key), why)

    def _corrupt(self, path: Path, why: str) -> None:
        self.stats.corrupt += 1
        if len(self.stats.corrupt_examples) < 5:
            self.stats.corrupt_examples.append(f"{path.name}: {why[:120]}")
        log.warning("checkpoint %s is corrupt (%s): ignored, replaying the recording", path, why[:200])
        with contextlib.suppress(OSError):
            path.unlink()

    @staticmethod
    def _decode(raw: bytes, key: str) -> dict:
        nl = raw.find(b"\n")
        if nl <= 0:
            raise ValueError("no header line")
        header = orjson.loads(raw[:nl])
        if not isinstance(header, dict) or header.get("magic") != _MAGIC.decode():
            raise ValueError("not a checkpoint file")
        if header.get("format_version") != FORMAT_VERSION or header.get("key") != key:
            raise ValueError("format version or key does not match the file name")
        body = raw[nl + 1 :]
        if len(body) != header.get("length") or hashlib.sha256(body).hexdigest() != header.get("sha256"):
            raise ValueError("payload length or SHA-256 does not match the header")
        payload = orjson.loads(zlib.decompress(body))
        if not isinstance(payload, dict):
            raise ValueError("payload is not an object")
        return payload

    def save(self, key: str, payload: dict) -> bool:
        """Write ``payload`` under ``key`` atomically (temp file + rename). False (counted in
        ``stats.errors``, logged) when it cannot be serialized or written."""
        path = self.path_for(key)
        try:
            body = zlib.compress(orjson.dumps(payload), 1)
        except (TypeError, orjson.JSONEncodeError) as exc:  # e.g. an int beyond 64 bits
            self.stats.errors += 1
            log.warning("checkpoint for %s not written: %s", path.name, exc)
            return False
        header = {
            "magic": _MAGIC.decode(),
            "format_version": FORMAT_VERSION,
            "key": key,
            "length": len(body),
            "sha256": hashlib.sha256(body).hexdigest(),
        }
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".ckpt")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(orjson.dumps(header) + b"\n" + body)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            self.stats.errors += 1
            log.warning("checkpoint %s not written: %s", path, exc)
            return False
        self.stats.written += 1
        return True

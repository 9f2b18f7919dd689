"""Start-up laziness: what ``mlm ask`` needs only on some paths is loaded on first use, and the
lazy stand-ins behave exactly as what they stand for."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from market_liquidity_monitor.lazy import LazyPattern, lazy_re

REPO = Path(__file__).resolve().parents[2]


def test_lazy_pattern_compiles_on_first_use_and_matches_like_re():
    text = "buy 5 BTC on Binance, then 2.5 eth on kraken"
    source, flags = r"(?P<n>\d+(?:\.\d+)?)\s+(?P<asset>[a-z]+)", re.IGNORECASE
    lazy, real = lazy_re(source, flags), re.compile(source, flags)
    assert isinstance(lazy, LazyPattern) and not lazy.compiled
    assert lazy.pattern == real.pattern and not lazy.compiled  # the source needs no compile
    assert [m.groupdict() for m in lazy.finditer(text)] == [m.groupdict() for m in real.finditer(text)]
    assert lazy.compiled
    assert lazy.flags == real.flags and lazy.groupindex == real.groupindex
    assert lazy.sub("#", text) == real.sub("#", text)


def test_agent_and_services_import_without_the_storage_layer():
    """The assistant, the services and the alert service import no SQLAlchemy (nor Alembic): a
    warm ``mlm ask`` never pays for them (``tests/unit/ingest/test_witness_voucher.py`` runs one)."""
    code = (
        "import json, sys\n"
        "import market_liquidity_monitor.cli\n"
        "from market_liquidity_monitor.agent.assistant import Assistant\n"
        "from market_liquidity_monitor.services import Services\n"
        "from market_liquidity_monitor.alerts_service import AlertService\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & {'sqlalchemy', 'alembic', 'aiosqlite'})))\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO,
                       env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})  # fmt: skip
    assert p.returncode == 0, p.stderr[-2000:]
    assert json.loads(p.stdout) == []


def test_writer_table_names_are_the_ingest_tables():
    from market_liquidity_monitor.storage.models import INGEST_TABLES
    from market_liquidity_monitor.storage.writer import INGEST_TABLE_NAMES

    assert tuple(INGEST_TABLES) == INGEST_TABLE_NAMES

"""Fixtures shared by the checkpoint and witness-voucher tests."""

from __future__ import annotations

import shutil

import pytest

#: Small recordings (Binance and Kraken, cryptofeed) copied per test, so size/mtime keys and
#: rewrites touch a scratch copy, never ../shared/data.
FILES = ("BINANCE.ws.1.0.gz", "BINANCE.http.0.0.gz", "KRAKEN.ws.48.0.gz", "KRAKEN.ws.49.0.gz",
         "KRAKEN.ws.50.0.gz")  # fmt: skip


@pytest.fixture
def recordings(data_dir, tmp_path):
    d = tmp_path / "data" / "cryptofeed"
    d.mkdir(parents=True)
    for f in FILES:
        shutil.copy2(data_dir / "cryptofeed" / f, d / f)
    return tmp_path / "data"

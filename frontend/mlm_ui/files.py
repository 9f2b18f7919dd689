"""Tables and series of API answers as data frames and as downloadable CSV / Parquet bytes
(pure: no Streamlit). Downloads keep the API's own field names and full precision; only the
on-screen tables are relabelled and rounded."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd


def _cell(v: Any) -> Any:
    # Nested values (a dict of reasons, a list of windows) as JSON text: one scalar per cell.
    if isinstance(v, dict | list | tuple):
        return json.dumps(v, default=str)
    return v


def frame(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Rows of dicts as a frame (nested values as JSON text), the ``columns`` given first (those
    present), then the others in their order of appearance."""
    df = pd.DataFrame([{k: _cell(v) for k, v in r.items()} for r in rows])
    if columns:
        first = [c for c in columns if c in df.columns]
        df = df[first + [c for c in df.columns if c not in first]]
    return df


def csv_bytes(df: pd.DataFrame) -> bytes:
    """``df`` as UTF-8 CSV with a header row, no index (floats at full precision)."""
    return df.to_csv(index=False).encode("utf-8")


def parquet_bytes(df: pd.DataFrame) -> bytes:
    """``df`` as a Parquet file (pyarrow). An object column Arrow cannot type (mixed values) is
    written as text rather than failing the download."""
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object:
            kinds = {type(v) for v in out[col] if v is not None and not (isinstance(v, float) and pd.isna(v))}
            if len(kinds) > 1:
                out[col] = out[col].map(lambda v: None if v is None else str(v))
    buf = io.BytesIO()
    out.to_parquet(buf, index=False, engine="pyarrow")
    return buf.getvalue()


def safe_name(*parts: Any) -> str:
    """A download file name stem from ``parts`` (``backtest``, ``BTC/USDT``, ...): letters,
    digits, ``.``, ``_`` and ``-`` only (``backtest-BTC-USDT``)."""
    text = "-".join(str(p) for p in parts if p is not None and str(p) != "")
    return re.sub(r"[^A-Za-z0-9._]+", "-", text).strip("-.") or "data"

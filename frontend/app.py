"""Market Liquidity Monitor — the Streamlit app.

Run: ``streamlit run frontend/app.py`` (the API must be running: ``mlm serve``). It talks to the
API only, at ``MLM_API_URL`` (default ``http://127.0.0.1:8000``), with ``MLM_API__TOKEN`` sent as
a Bearer token when set.
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

# `streamlit run frontend/app.py` puts frontend/ on sys.path; AppTest and other runners may not.
_HERE = Path(__file__).resolve().parent
if str(_HERE) not in sys.path:
    sys.path.insert(0, str(_HERE))

from mlm_ui.client import ApiClient  # noqa: E402
from mlm_ui.common import mode_banner  # noqa: E402

VIEWS = _HERE / "views"

st.set_page_config(page_title="Market Liquidity Monitor", page_icon=":material/monitoring:", layout="wide")
# No "Deploy" button or developer menu for traders (`mlm up` also passes --client.toolbarMode).
st.set_option("client.toolbarMode", "minimal")

PAGES = [
    st.Page(VIEWS / "chat.py", title="Chat", icon=":material/chat:", url_path="chat", default=True),
    st.Page(
        VIEWS / "live_book.py", title="Live book", icon=":material/candlestick_chart:", url_path="live_book"
    ),
    st.Page(
        VIEWS / "compare.py", title="Compare venues", icon=":material/compare_arrows:", url_path="compare"
    ),
    st.Page(VIEWS / "route.py", title="Route an order", icon=":material/alt_route:", url_path="route"),
    st.Page(VIEWS / "candles.py", title="Candles", icon=":material/bar_chart:", url_path="candles"),
    st.Page(
        VIEWS / "liquidity_history.py",
        title="Liquidity history",
        icon=":material/timeline:",
        url_path="liquidity-history",
    ),
    st.Page(VIEWS / "backtest.py", title="Backtest", icon=":material/history:", url_path="backtest"),
    st.Page(VIEWS / "pairs.py", title="Pairs", icon=":material/stacked_line_chart:", url_path="pairs"),
    st.Page(VIEWS / "alerts.py", title="Alerts", icon=":material/notifications:", url_path="alerts"),
    st.Page(VIEWS / "health.py", title="Health", icon=":material/monitor_heart:", url_path="health"),
]

page = st.navigation(PAGES)
api = ApiClient.from_env()
mode = mode_banner(api)  # "Recorded data" / "Live data" on every page
with st.sidebar:
    st.caption(f"API: `{api.base_url}`" + (f" · data: **{mode}**" if mode else ""))
page.run()

"""Helpers of the Streamlit frontend: the API client, chart builders and shared UI pieces.

The frontend talks to the Market Liquidity Monitor API only (``MLM_API_URL``); it never imports
the ``market_liquidity_monitor`` package.
"""

"""The REST stand-in (``mlm rest-replay``): recordings index, per-venue routes, loopback server.

Import from ``market_liquidity_monitor.data_engine.replay_server`` (documented there).
"""

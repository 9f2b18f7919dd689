"""ccxt REST data engine: one async exchange per venue, a circuit breaker per venue, a shared cache.

Modules (imported directly; this package imports nothing so ``breaker``/``cache`` stay light):

* ``engine``: ``DataEngine`` (markets, fee_schedule, order_book, ohlcv, trades, health, close),
  ``VenueHealth``, ``point_exchange_at``;
* ``breaker``: ``CircuitBreaker`` (closed/open/half-open, injectable clock);
* ``cache``: ``Cache`` protocol, ``MemoryCache``, ``RedisCache`` (degrades to memory), ``build_cache``;
* ``errors``: ``VenueUnreachableError``, ``CircuitOpenError``, ``VenueRequestError``;
* ``replay_server``: ``RestReplayServer``, a loopback server replaying recorded REST responses.
"""

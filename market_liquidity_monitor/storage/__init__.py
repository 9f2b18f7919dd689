"""Storage: SQLAlchemy 2 async over SQLite (embedded default) or PostgreSQL (asyncpg).

Modules (imported directly; this package imports nothing):

* ``db``: ``Database`` (engine + sessions from a URL), ``make_engine``, ``run_sync``;
* ``models``: the tables (candles, trades, book_snapshots, metrics, alerts, alert_events,
  chat_sessions, chat_messages);
* ``migrations``: Alembic, ``upgrade(url)`` / ``await upgrade_async(url)``;
* ``repositories``: bulk insert-or-ignore, reads, ``AlertRepository``, ``ChatRepository``;
* ``writer``: ``StorageWriter``, batched and buffered writes from the ingest path;
* ``importers``: candle files and recorded trades -> storage (``mlm import``);
* ``history``: ``History`` (candles, realised volatility, trend), resampling;
* ``export``: CSV / Parquet export (``mlm export``);
* ``cli``: ``db_app`` (``mlm db upgrade``), ``import_path``, ``export``.
"""

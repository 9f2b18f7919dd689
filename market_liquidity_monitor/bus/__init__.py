"""Scale-out: ingest workers publish verified books on a bus, API replicas rebuild them.

- ``codec``: the messages (compact orjson arrays);
- ``transport``: ``InProcessBus`` and ``RedisStreamsBus`` (Redis Streams via redis-py);
- ``publisher``: ``PublishingStore``, the worker's ``BookStore`` that publishes what it verified;
- ``follower``: ``BookFollower``, the replica's rebuild (latest image + stream, ``BookSync`` on the
  bus sequence, gaps and restarts resynced, heartbeats -> staleness);
- ``worker``: ``mlm ingest --shard I/N`` (``ShardWorker``, venue sharding).

docs/scaleout.md describes the deployment.
"""

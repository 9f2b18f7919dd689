"""``GET /metrics``: Prometheus text exposition (prometheus-client), read at scrape time.

A custom ``Collector`` reads the counters the process already keeps (book quality in the
``BookStore``, the WebSocket hub's stats, the storage writer's stats) when Prometheus scrapes, so
the ingest hot path does nothing extra. Per book (labels ``venue``, ``symbol``):
``mlm_book_messages_total``, ``mlm_book_gaps_total``, ``mlm_book_resyncs_total``,
``mlm_book_checksum_failures_total``, ``mlm_book_age_seconds``, ``mlm_book_synced``; WebSocket:
``mlm_ws_clients``, ``mlm_ws_clients_dropped_total``, ``mlm_ws_frames_skipped_total``; writer:
``mlm_writer_buffered_rows``, ``mlm_writer_written_rows_total``, ``mlm_writer_dropped_rows_total``,
``mlm_writer_rejected_rows_total``. Request latency: ``mlm_http_request_duration_seconds``
(histogram by method, route template and status class), observed by ``LatencyMiddleware`` on the
API's requests only (the one figure that has no counter to read).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)


class MLMCollector(Collector):
    """Reads ``app.state`` (market store, hub, writer) at each scrape."""

    def __init__(self, state: Callable[[], Any]):
        self._state = state

    def collect(self) -> Iterator[Any]:
        st = self._state()
        yield from self._books(getattr(st, "market", None))
        yield from self._ws(getattr(st, "hub", None))
        yield from self._writer(getattr(st, "writer", None))

    def _books(self, market: Any) -> Iterator[Any]:
        if market is None:
            return
        labels = ["venue", "symbol"]
        fams = {
            "messages": CounterMetricFamily("mlm_book_messages", "Events routed to the book", labels=labels),
            "gaps": CounterMetricFamily("mlm_book_gaps", "Sequence gaps found", labels=labels),
            "resyncs": CounterMetricFamily("mlm_book_resyncs", "Resyncs from a snapshot", labels=labels),
            "checksum_failures": CounterMetricFamily(
                "mlm_book_checksum_failures", "Venue checksums that did not match", labels=labels
            ),
        }
        age = GaugeMetricFamily(
            "mlm_book_age_seconds", "Seconds since the last book update (book clock)", labels=labels
        )
        synced = GaugeMetricFamily("mlm_book_synced", "1 when the book is synced", labels=labels)
        store = market.store
        for inst in store.instruments():
            try:
                e = store.entry(inst)
                q = e.book.quality
                lv = [inst.venue, inst.symbol]
                fams["messages"].add_metric(lv, e.messages)
                fams["gaps"].add_metric(lv, q.gaps)
                fams["resyncs"].add_metric(lv, q.resyncs)
                fams["checksum_failures"].add_metric(lv, q.checksum_failures)
                a = store.age_ms(e)
                if a is not None:
                    age.add_metric(lv, a / 1000.0)
                synced.add_metric(lv, 1.0 if q.synced else 0.0)
            except Exception:  # a book changing under us (replay thread): skip it this scrape
                log.debug("metrics: book %s skipped", inst, exc_info=True)
        yield from fams.values()
        yield age
        yield synced

    def _ws(self, hub: Any) -> Iterator[Any]:
        if hub is None:
            return
        s = hub.stats()
        yield GaugeMetricFamily("mlm_ws_clients", "WebSocket clients connected", value=s["clients"])
        yield CounterMetricFamily(
            "mlm_ws_clients_dropped", "WebSocket clients disconnected as too slow", value=s["clients_dropped"]
        )
        yield CounterMetricFamily(
            "mlm_ws_frames_skipped",
            "Frames skipped for slow clients (connected now)",
            value=s["frames_skipped"],
        )

    def _writer(self, writer: Any) -> Iterator[Any]:
        if writer is None:
            return
        s = writer.stats()
        yield GaugeMetricFamily(
            "mlm_writer_buffered_rows", "Rows waiting in the storage writer", value=s.buffered
        )
        yield CounterMetricFamily("mlm_writer_written_rows", "Rows written to storage", value=s.written)
        yield CounterMetricFamily("mlm_writer_dropped_rows", "Rows dropped (buffer full)", value=s.dropped)
        yield CounterMetricFamily(
            "mlm_writer_rejected_rows", "Rows refused by the database", value=s.rejected
        )


def metrics_registry(state: Callable[[], Any]) -> tuple[CollectorRegistry, Histogram]:
    """A registry holding ``MLMCollector`` over ``state()`` (the app's ``state``) and the request
    latency histogram."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(MLMCollector(state))
    latency = Histogram(
        "mlm_http_request_duration_seconds",
        "API request latency (time to the end of the response)",
        ["method", "route", "status"],
        registry=reg,
        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    )
    return reg, latency


class LatencyMiddleware:
    """Pure ASGI middleware: observes each HTTP request's duration in ``histogram``, labelled by the
    matched route template (``/api/orderbook/{venue}/{symbol:path}``; ``unmatched`` otherwise, so a
    client cannot create labels) and the status class (``2xx``...)."""

    def __init__(self, app: Any, histogram: Histogram):
        self.app = app
        self.histogram = histogram

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = [500]

        async def send_wrapper(message: dict) -> None:
            if message.get("type") == "http.response.start":
                status[0] = int(message.get("status", 500))
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.histogram.labels(scope.get("method", ""), route, f"{status[0] // 100}xx").observe(
                time.perf_counter() - t0
            )


def render(registry: CollectorRegistry) -> tuple[bytes, str]:
    """``(body, content type)`` of one scrape."""
    return generate_latest(registry), CONTENT_TYPE_LATEST

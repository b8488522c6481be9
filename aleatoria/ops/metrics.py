"""
Prometheus metrics, served on C{/metrics}.

Each daemon has its own registry (several can run in one process, as the
tests do). Counters move on the hot path with one increment per message or
per fan-out, never per recipient; gauges read the hub when scraped, except
the pool size, which lives in the store and is refreshed on a timer.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Metric,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from twisted.application.internet import TimerService
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import Request

from aleatoria.domain.evictions import Evictions
from aleatoria.domain.ports import IMatchmaking

if TYPE_CHECKING:
    from aleatoria.domain.hub import Hub

_T = TypeVar("_T")
_M = TypeVar("_M", Counter, Histogram)

POOL_REFRESH_SECONDS = 10


class Metrics:
    """
    One daemon's metrics, with the process's own (memory, CPU, open file
    descriptors). Counters come without C{_created} twins: a scrape of a
    daemon that restarted shows the reset by itself.
    """

    def __init__(self, worker: int | None = None) -> None:
        disable_created_metrics()
        self.registry = registry = CollectorRegistry()
        self.exposed = registry if worker is None else _Labelled(registry, worker=str(worker))
        ProcessCollector(registry=registry)
        self.connections = Gauge(
            "aleatoria_connections", "Open WebSocket connections on this daemon.",
            registry=registry)
        self.rooms = Gauge(
            "aleatoria_rooms", "Rooms with members on this daemon.", registry=registry)
        self.pool = Gauge(
            "aleatoria_pool_size", "Users in the matchmaking pool (all daemons).",
            registry=registry)
        self.received = _Children(Counter(
            "aleatoria_messages_received", "Client messages received, by type.",
            ["type"], registry=registry))
        self.sent = _Children(Counter(
            "aleatoria_messages_sent", "Messages sent to clients, by type.",
            ["type"], registry=registry))
        self.errors = _Children(Counter(
            "aleatoria_errors", "Errors answered to clients, by code.",
            ["code"], registry=registry))
        self.pairings = Counter(
            "aleatoria_pairings", "Pairings made by this daemon.", registry=registry)
        self.calls_held = _Children(Counter(
            "aleatoria_calls_held", "Calls held for a user whose connection was lost, by "
            "outcome: held (by this daemon), resumed (the user came back here).",
            ["outcome"], registry=registry))
        self.blocks = Counter(
            "aleatoria_blocks", "Blocks made on this daemon (reports' included).",
            registry=registry)
        self.reports = _Children(Counter(
            "aleatoria_reports", "Reports filed on this daemon, by reason.", ["reason"],
            registry=registry))
        self.store_seconds = _Children(Histogram(
            "aleatoria_store_seconds", "Time store operations take, by operation.",
            ["operation"], registry=registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 2.5)))
        self.store_failures = _Children(Counter(
            "aleatoria_store_failures", "Store operations that failed, by operation.",
            ["operation"], registry=registry))
        self.sentry_events = _Children(Counter(
            "aleatoria_sentry_events", "Events handed to Sentry, by kind.",
            ["kind"], registry=registry))
        self.reports_withheld = _Children(Counter(
            "aleatoria_reports_withheld",
            "Failures and client faults neither logged nor reported one by one, past "
            "their budget (counted, then summed up), by operation.",
            ["operation"], registry=registry))
        self.webhooks = _Children(Counter(
            "aleatoria_webhooks",
            "Webhooks, by outcome: delivered; failed (an attempt, retried); dropped_queue_full, "
            "dropped_expired (retried past --webhook-retry-hours), dropped_shutdown. Per URL.",
            ["outcome"], registry=registry))
        self.webhooks_waiting = Gauge(
            "aleatoria_webhooks_waiting", "Webhooks waiting to be sent or being sent (all URLs).",
            registry=registry)

        self.bans = _Children(Counter(
            "aleatoria_bans", "Bans set through this daemon's server API, by target "
            "(user, address).", ["target"], registry=registry))
        self.bans_lifted = Counter(
            "aleatoria_bans_lifted", "Bans lifted through this daemon's server API.",
            registry=registry)
        self.ban_closes = Counter(
            "aleatoria_ban_closes", "Connections to this daemon closed by a ban.",
            registry=registry)
        self.handshakes_banned = Counter(
            "aleatoria_handshakes_banned", "Handshakes this daemon refused for a ban.",
            registry=registry)
        self.bans_in_force = Gauge(
            "aleatoria_bans_in_force", "Bans in force (all daemons), as this daemon knows them.",
            registry=registry)

    def watch_hub(self, hub: Hub) -> None:
        self.connections.set_function(lambda: hub.connection_count)
        self.rooms.set_function(lambda: len(hub.room_names()))
        self.bans_in_force.set_function(hub.bans.in_force)

    def watch_evictions(self, evictions: Evictions) -> None:
        """Count the history streams the backend evicts (L{aleatoria.domain.evictions})."""
        self.registry.register(_Evicted(evictions))

    def pool_refresher(self, matchmaking: IMatchmaking, reactor: IReactorTime) -> TimerService:
        """A timer service keeping the pool gauge fresh."""
        def refresh() -> None:
            d = matchmaking.pool_size()
            d.addCallbacks(self.pool.set, lambda failure: None)

        service = TimerService(POOL_REFRESH_SECONDS, refresh)
        service.clock = reactor
        return service

    def time_store(self, operation: str, d: Deferred[Any]) -> None:
        """Record how long the Deferred C{d} of C{operation} takes, and whether it fails."""
        started = time.perf_counter()

        def done(result: _T) -> _T:
            if isinstance(result, Failure):
                self.store_failures.labels(operation).inc()
            self.store_seconds.labels(operation).observe(time.perf_counter() - started)
            return result

        d.addBoth(done)  # one callback, not two: it runs for every store operation


class MetricsPage(Resource):
    """C{/metrics} in the Prometheus text format."""

    isLeaf = True

    def __init__(self, metrics: Metrics) -> None:
        super().__init__()
        self._registry = metrics.exposed

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", CONTENT_TYPE_LATEST.encode())
        return generate_latest(self._registry)


class _Evicted:
    """The streams a store evicted, by kind, as a counter read when scraped."""

    def __init__(self, evictions: Evictions) -> None:
        self._evictions = evictions

    def collect(self) -> Iterator[Metric]:
        evicted = CounterMetricFamily(
            "aleatoria_streams_evicted",
            "History streams (rooms, conversations, inboxes) this daemon evicted, the "
            "oldest first, to keep history within --max-history-bytes, by kind.",
            labels=["kind"])
        for kind, count in self._evictions.total.items():
            evicted.add_metric([kind], count)
        yield evicted


class _Children(Generic[_M]):
    """
    A labelled metric whose children are made once per label value:
    prometheus_client's C{labels()} costs more than the increment itself,
    and the hot path asks for the same few children again and again. The
    label values are bounded (message types, codes, operations).
    """

    def __init__(self, metric: _M) -> None:
        self._metric: _M = metric
        self._children: dict[str, _M] = {}

    def labels(self, value: str) -> _M:
        child = self._children.get(value)
        if child is None:
            child = self._children[value] = self._metric.labels(value)
        return child


class _Labelled:
    """
    A registry's metrics with constant labels added to every sample: with
    C{--workers}, the worker that answers a scrape says which it is.
    """

    def __init__(self, registry: CollectorRegistry, **labels: str) -> None:
        self._registry = registry
        self._labels = labels

    def collect(self) -> Iterator[Metric]:
        for metric in self._registry.collect():
            labelled = Metric(metric.name, metric.documentation, metric.type, metric.unit)
            labelled.samples = [
                sample._replace(labels={**sample.labels, **self._labels})
                for sample in metric.samples
            ]
            yield labelled

"""
Webhooks to the app's backend: an observer of the domain's facts that
POSTs the ones L{aleatoria.ops.webhook_events.EVENTS} names, as signed
JSON (L{aleatoria.ops.webhook_signing}), to every C{--webhook-url}
(L{aleatoria.ops.webhook_delivery}). Each fact is told on the daemon
where it happened, so each webhook is sent by that daemon alone.

What becomes of them is counted (C{aleatoria_webhooks}, by outcome) and
logged -- a drop is never silent; an endpoint that keeps failing is one
log line and one Sentry event when it starts failing (at most one a
minute), and one line when it answers again.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import msgspec
from twisted.application.service import Service
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from aleatoria.domain.events import Fact
from aleatoria.domain.ports import IObserver
from aleatoria.ops.budgets import WINDOW, Summary
from aleatoria.ops.metrics import Metrics
from aleatoria.ops.webhook_delivery import LONGEST_WAIT, Endpoint, Message, Post
from aleatoria.ops.webhook_events import EVENTS
from aleatoria.ops.webhook_signing import Signer, message_id

if TYPE_CHECKING:
    from aleatoria.ops.reporting import Report

_log = Logger(namespace="aleatoria.webhooks")

_DROPPED = {
    "queue_full": "its queue is full (--webhook-queue)",
    "expired": "retried for --webhook-retry-hours without success",
    "shutdown": "the daemon stopped before it could be sent",
}


@implementer(IObserver)
class Webhooks(Service):
    """
    @param urls: where to POST (text).
    @param secret: the C{whsec_} signing secret.
    @param daemon: this daemon's id, as C{user.connected} names it.
    @param capacity: messages that may wait for each URL.
    @param retry_seconds: how long a message is retried.
    @param metrics: the L{aleatoria.ops.metrics.Metrics}.
    @param report: the daemon's L{aleatoria.ops.reporting.Report}.
    """

    def __init__(self, urls: Iterable[str], secret: str, daemon: str, *, capacity: int,
                 retry_seconds: float, metrics: Metrics, report: Report,
                 reactor: IReactorTime) -> None:
        self._daemon = daemon
        self._retry_seconds = retry_seconds
        self._reactor = reactor
        self._post = Post(reactor, Signer(secret))
        self.outcomes = Outcomes(metrics, report, reactor)
        self.endpoints = [Endpoint(url, self._post, reactor, capacity, self.outcomes)
                          for url in urls]
        metrics.webhooks_waiting.set_function(lambda: sum(map(len, self.endpoints)))

    def happened(self, fact: Fact) -> None:
        made = EVENTS.get(type(fact))
        if made is None:
            return
        kind, data = made(fact, self._daemon)
        now = self._reactor.seconds()
        body = msgspec.json.encode({"type": kind, "timestamp": _rfc3339(now), "data": data})
        message = Message(message_id(), kind, body, now + self._retry_seconds)
        for endpoint in self.endpoints:
            endpoint.send(message)

    def stopService(self) -> Deferred[object]:
        """Send what is queued for a moment, drop the rest (told), close the connections."""
        super().stopService()
        d = gatherResults([endpoint.stop() for endpoint in self.endpoints], consumeErrors=True)
        d.addBoth(lambda _: self.outcomes.close())
        return d.addBoth(lambda _: self._post.close())


class Outcomes:
    """What became of the webhooks: counted, logged, reported."""

    def __init__(self, metrics: Metrics, report: Report, clock: IReactorTime) -> None:
        self._counted = metrics.webhooks
        self._report = report
        self._drops = Summary(clock, WINDOW, self._drops_summed)
        self._failing = Summary(clock, WINDOW, self._failing_summed)

    def delivered(self, endpoint: Endpoint, message: Message) -> None:
        self._counted.labels("delivered").inc()

    def failed(self, endpoint: Endpoint, message: Message, why: str) -> None:
        """An attempt failed; the first of a streak is logged and reported (one a minute)."""
        self._counted.labels("failed").inc()
        if endpoint.failures != 1 or not self._failing.first(endpoint.url):
            return
        url = shown(endpoint.url)
        _log.warn("Webhooks to {url} fail ({why}): retrying, waiting up to {wait:.0f} s "
                  "between attempts", url=url, why=why, wait=LONGEST_WAIT)
        self._report.capture_message(
            "A webhook endpoint fails", extra={"url": url, "why": why, "type": message.kind},
            operation="webhook")

    def recovered(self, endpoint: Endpoint, failures: int) -> None:
        _log.info("Webhooks to {url} are delivered again, after {count} failed attempts",
                  url=shown(endpoint.url), count=failures)

    def dropped(self, endpoint: Endpoint, message: Message, why: str) -> None:
        """A message is given up: counted; the first of a minute logged in full, then a sum."""
        self._counted.labels(f"dropped_{why}").inc()
        if self._drops.first((endpoint.url, why)):
            _log.warn("Dropped webhook {type} {id} for {url}: {why}", type=message.kind,
                      id=message.id, url=shown(endpoint.url), why=_DROPPED[why])

    def close(self) -> None:
        self._drops.close_all()
        self._failing.close_all()

    def _drops_summed(self, key: tuple[str, str], count: int) -> None:
        url, why = key
        _log.warn("Dropped {count} more webhooks for {url} in the last {seconds} s: {why}",
                  count=count, url=shown(url), seconds=WINDOW, why=_DROPPED[why])

    def _failing_summed(self, url: str, count: int) -> None:
        _log.warn("Webhooks to {url} started failing {count} more times in the last "
                  "{seconds} s", url=shown(url), count=count, seconds=WINDOW)


def shown(url: str) -> str:
    """C{url} as logs show it: no user, password or query (they may hold a token)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _rfc3339(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")

"""
The backend's command connection to Redis, and the rules it keeps so
that a dead or hung Redis costs errors, never unbounded memory: every
command has a timeout, which fails that command alone; while Redis is
unreachable a command fails at once with L{StoreUnavailable} rather than
queueing; no more than C{max_pending} commands wait at any time; and the
outage is said once, as is the return. Behind sentinels, a return to
another primary is a failover: one line and one report say where to and
after how long.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn, Protocol, TypeVar

import txredisapi
from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.defer import Deferred, fail
from twisted.internet.interfaces import IDelayedCall, IReactorTime, IStreamClientEndpoint
from twisted.logger import Logger
from twisted.python.failure import Failure

from aleatoria.domain.refusals import StoreUnavailable
from aleatoria.redis.link import Link, Script
from aleatoria.redis.scripts import SCRIPTS

_T = TypeVar("_T")

Reply = Any
"""What Redis answers a command or a script: txredisapi gives it no type."""


class Report(Protocol):
    """What the backend needs of the daemon's L{aleatoria.ops.reporting.Report}."""

    def breadcrumb(self, category: str, message: str, level: str = "info",
                   **data: object) -> None: ...

    def capture_message(self, message: str, level: str = "warning",
                        extra: dict[str, object] | None = None, **tags: object) -> None: ...

    def errback(self, operation: str, **tags: object) -> Callable[[Failure], None]: ...

FAILOVER_GRACE = 30.0
"""Seconds the sentinels have to name a new primary before the loss is reported."""


class CommandLink(Service):
    """
    @param endpoint: an C{IStreamClientEndpoint} to Redis (TLS-wrapped or not).
    @param where: C{host:port}, for log lines.
    @param prefix: the key prefix, which every script takes first.
    @param timeout: seconds before a command (or the connect handshake) is
        given up.
    @param max_pending: commands that may wait for Redis at once.
    @param report: the daemon's L{aleatoria.ops.reporting.Report}, which hears
        of the link going down (a warning) and up (a breadcrumb).
    @param link_options: the rest of what L{Link} takes: C{retry_max},
        C{username}, C{password}, C{db}.
    @param sentinels: whether sentinels name the primary (the endpoint asks
        them): a loss is then reported only if no primary returns within
        L{FAILOVER_GRACE}, and a return elsewhere as a failover.
    """

    _log = Logger(namespace="aleatoria.redis")

    def __init__(self, endpoint: IStreamClientEndpoint | None, where: str, reactor: IReactorTime, *,
                 prefix: str = "", timeout: float, max_pending: int, report: Report | None = None,
                 sentinels: bool = False, **link_options: Any) -> None:
        self.prefix = prefix
        self._reactor = reactor
        self._sentinels = sentinels
        self._primary: str | None = None
        self._still_lost: IDelayedCall | None = None
        self.on_readonly: Callable[[], object] | None = None
        """Called when a command meets a demoted primary (C{READONLY})."""
        self._timeout = timeout
        self._max_pending = max_pending
        self._report = report
        self._watchers: list[Callable[[bool], object]] = []
        self._unreachable: IDelayedCall | None = None
        self._lost_at: float | None = None
        self.pending = 0
        """Commands sent and not yet answered."""
        self._scripts = {name: Script(source) for name, source in SCRIPTS.items()}
        self.link = Link(endpoint, where, reactor, timeout=timeout,
                         scripts=tuple(self._scripts.values()), on_change=self._linked,
                         **link_options)

    @property
    def _where(self) -> str:
        return self.link.where

    @property
    def era(self) -> str:
        """The primary's era (L{Link.era}): a stream of another may have lost its tail."""
        return self.link.era

    @property
    def connected(self) -> bool:
        return self.link.up

    def watch(self, watcher: Callable[[bool], object]) -> None:
        """Call C{watcher(up)} each time the link opens or is lost."""
        self._watchers.append(watcher)

    def startService(self) -> None:
        super().startService()
        if self._sentinels:
            self._log.info("Asking the sentinels at {where} where the Redis primary is",
                           where=self._where)
        else:
            self._log.info("Connecting to Redis at {where}", where=self._where)
        self.link.start()
        self._unreachable = self._reactor.callLater(self._timeout, self._still_unreachable)

    def stopService(self) -> Deferred[None]:
        super().stopService()
        for call in (self._unreachable, self._still_lost):
            if call is not None and call.active():
                call.cancel()
        return self.link.stop()

    def _still_unreachable(self) -> None:
        if not self.connected:
            trouble = getattr(self.link.endpoint, "trouble", None)
            if trouble:  # the sentinels named no primary: say why, not that Redis is down
                self._log.warn(
                    "No Redis primary through the sentinels at {where}: {trouble}; serving "
                    "live traffic only until one answers",
                    where=self._where, trouble=trouble)
            else:
                self._log.warn(
                    "Redis at {where} is unreachable (down, or refusing our "
                    "credentials); serving live traffic only until it answers",
                    where=self._where,
                )
            if self._report is not None:
                self._report.capture_message(
                    "Redis unreachable", operation="redis_connect", redisAddr=self._where,
                )

    def _linked(self, up: bool) -> None:
        if up:
            self._back()
        elif self.running:
            self._lost()
        for watcher in self._watchers:
            watcher(up)

    def _back(self) -> None:
        if self._still_lost is not None and self._still_lost.active():
            self._still_lost.cancel()
        moved = self._primary is not None and self._primary != self._where
        self._primary = self._where
        if moved:
            self._failed_over()
        elif self._lost_at is None:
            self._log.info("Redis at {where} connected", where=self._where)
        else:
            self._log.info("Redis at {where} is back after {seconds:.1f} s",
                           where=self._where, seconds=self._reactor.seconds() - self._lost_at)
            self._lost_at = None
        if self._report is not None:
            self._report.breadcrumb("redis", "Redis connected successfully", address=self._where)

    def _failed_over(self) -> None:
        seconds = self._reactor.seconds() - (self._lost_at or self._reactor.seconds())
        self._lost_at = None
        self._log.warn("Redis primary is now {where} (failover after {seconds:.1f} s)",
                       where=self._where, seconds=seconds)
        if self._report is not None:
            self._report.capture_message("Redis failover", operation="redis_failover",
                                         redisAddr=self._where)

    def _lost(self) -> None:
        self._lost_at = self._reactor.seconds()
        if self._sentinels:
            self._log.warn(
                "Redis primary at {where} lost; history, rooms and matchmaking are "
                "unavailable until the sentinels name one that answers", where=self._where)
            self._still_lost = self._reactor.callLater(FAILOVER_GRACE, self._no_failover)
            return
        self._log.warn(
            "Redis at {where} lost; history, rooms and matchmaking are unavailable "
            "until it returns (retrying at least every {retry:g} s)",
            where=self._where, retry=self.link.retry_max,
        )
        if self._report is not None:
            self._report.capture_message(
                "Redis connection lost", operation="redis_connect", redisAddr=self._where,
            )

    def _no_failover(self) -> None:
        self._log.warn("No Redis primary for {grace:g} s: the sentinels name none that answers",
                       grace=FAILOVER_GRACE)
        if self._report is not None:
            self._report.capture_message("Redis primary unreachable", operation="redis_connect",
                                         redisAddr=self._where)

    def call(self, method: str, *args: object, capped: bool = True) -> Deferred[Reply]:
        """
        Run one command (a method of txredisapi's handler) with a timeout;
        fail at once when Redis is unreachable or -- unless C{capped} is
        false, for session bookkeeping, which the number of connections
        bounds already -- too many commands wait.
        """
        if not self.connected:
            return fail(StoreUnavailable(f"Redis at {self._where} is not connected"))
        if capped and self.pending >= self._max_pending:
            return fail(StoreUnavailable("too many Redis commands waiting"))
        self.pending += 1
        d = self.link.command(method, *args)
        d.addTimeout(self._timeout, self._reactor)
        d.addErrback(self._unavailable)
        d.addBoth(self._done)
        return d

    def run(self, script: str, *args: object, capped: bool = True) -> Deferred[Reply]:
        """Run the script named C{script} (L{SCRIPTS}) with the prefix and C{args}."""
        return self.call("run_script", self._scripts[script], [self.prefix, *map(_text, args)],
                         capped=capped)

    def _done(self, result: _T) -> _T:
        self.pending -= 1
        return result

    def _unavailable(self, failure: Failure) -> NoReturn:
        """
        The connection failed, or this command timed out: that fails this
        command only (its late reply is dropped), while a PING finds out
        whether the connection is dead.
        """
        if failure.check(txredisapi.ResponseError) and str(failure.value).startswith("READONLY"):
            self._readonly()
        failure.trap(txredisapi.ConnectionError, defer.TimeoutError, ConnectionError)
        if failure.check(defer.TimeoutError):
            self.link.probe()
        raise StoreUnavailable(failure.getErrorMessage())

    def _readonly(self) -> NoReturn:
        """
        This Redis was the primary, and a failover demoted it: our writes
        fail here. Leave it -- and have the pub/sub link leave -- for the
        primary the next connection attempt finds.
        """
        self.link.move()
        if self.on_readonly is not None:
            self.on_readonly()
        raise StoreUnavailable(f"Redis at {self._where} is no longer the primary")


def _text(value: object) -> str:
    """A script argument as Redis takes it: text."""
    return value.decode() if isinstance(value, bytes) else str(value)

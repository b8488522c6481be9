"""
What failures and clients' faults may cost in log lines and Sentry events.

A client can cause either as often as it likes -- a malformed frame, an
unknown type, a request that makes a store call fail -- and a traceback
and an event for each cost milliseconds of CPU and crowd real errors out
of the SDK's queue (100 items). So a failure is told in full once per
kind and minute, and the rest of that minute summed up in one line; a
client's fault is told within a budget of its connection, of its address
and of the daemon, and past it only counted, then summed up. Plain
values and timers, no I/O: L{aleatoria.ops.reporting} applies them.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from aleatoria.domain.limits import KeyedBuckets, TokenBucket

FailureKind = tuple[str, str, str | None]
"""A kind of failure: C{(operation, error, message type)}, never a client's data."""

WINDOW = 60
"""Seconds over which what was withheld is summed up in one line (per kind)."""

CONNECTION_FAULTS = (3, 1 / 60)
ADDRESS_FAULTS = (10, 5 / 60)
DAEMON_FAULTS = (60, 1.0)
"""
Clients' faults told in full: so many at once, then so many a second --
per connection, per client address, and for the whole daemon.
"""


class ReportBudget:
    """
    @param clock: the reactor (C{seconds}, C{callLater}).
    @param withheld: called with the operation of each failure or fault
        that is not told (a metric counts them).
    """

    _log = Logger()

    def __init__(self, clock: IReactorTime,
                 withheld: Callable[[str], object] | None = None) -> None:
        self._clock = clock
        self._withheld = withheld or (lambda operation: None)
        self._failures = Summary(clock, WINDOW, self._failures_summed)
        self._faults = Summary(clock, WINDOW, self._faults_summed)
        self._addresses = KeyedBuckets(ADDRESS_FAULTS[1], ADDRESS_FAULTS[0], clock.seconds)
        self._daemon = TokenBucket(DAEMON_FAULTS[1], DAEMON_FAULTS[0], clock.seconds)

    def failure(self, kind: FailureKind) -> bool:
        """
        Whether a failure of C{kind} -- C{(operation, error, message type)},
        never a client's data -- is the first of its window: to be logged
        and reported in full. If not, it is counted.
        """
        if self._failures.first(kind):
            return True
        self._withheld(kind[0])
        return False

    def connection(self) -> TokenBucket:
        """A connection's own budget of faults, for L{fault}."""
        return TokenBucket(CONNECTION_FAULTS[1], CONNECTION_FAULTS[0], self._clock.seconds)

    def fault(self, operation: str, connection: TokenBucket | None = None,
              address: str | None = None) -> bool:
        """
        Whether a client's fault is within the budgets of its C{connection}
        (from L{connection}), its C{address} and the daemon: to be logged
        and reported in full. If not, it is counted.
        """
        if ((connection is None or not connection.delay())
                and (address is None or not self._addresses.delay(address))
                and not self._daemon.delay()):
            return True
        self._withheld(operation)
        self._faults.withheld(operation)
        return False

    def stop(self) -> None:
        """The daemon stops: sum up what was withheld so far, now."""
        self._failures.close_all()
        self._faults.close_all()

    def _failures_summed(self, kind: FailureKind, count: int) -> None:
        operation, error, message_type = kind
        self._log.error(
            "{count} more failures of {operation} ({error}{of}) in the last {seconds} s, "
            "past the one logged and reported",
            count=count, operation=operation, error=error, seconds=WINDOW,
            of=f", {message_type}" if message_type else "",
        )

    def _faults_summed(self, operation: str, count: int) -> None:
        self._log.info(
            "{count} more client faults of {operation} in the last {seconds} s, past the "
            "reporting budget: counted, not logged or reported one by one",
            count=count, operation=operation, seconds=WINDOW,
        )


class Summary:
    """
    Repeated events of one key (refusals from one address, failures of one
    kind) told once, then counted: the first is passed on at once, the rest
    only as a count when C{window} seconds have gone by -- C{tell(key,
    count)}. A flood costs one line per window, not one per event.
    """

    def __init__(self, clock: IReactorTime, window: float,
                 tell: Callable[[Any, int], object]) -> None:
        self._clock = clock
        self._window = window
        self._tell = tell
        self._open: dict[Hashable, list[Any]] = {}

    def first(self, key: Hashable) -> bool:
        """Whether this event of C{key} is the first of its window (to be told in full)."""
        if key in self._open:
            self._open[key][0] += 1
            return False
        self._open[key] = [0, self._clock.callLater(self._window, self._close, key)]
        return True

    def withheld(self, key: Hashable) -> None:
        """Count an event of C{key} that is not told in full, not even the first."""
        if not self.first(key):
            return
        self._open[key][0] += 1

    def _close(self, key: Hashable) -> None:
        count, _ = self._open.pop(key)
        if count:
            self._tell(key, count)

    def close_all(self) -> None:
        """Tell every count now (the daemon stops)."""
        for key, (_, timer) in list(self._open.items()):
            timer.cancel()
            self._close(key)

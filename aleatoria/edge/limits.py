"""
What one connection may cost the daemon: frames per message, open
connections per address, and what may wait for a client that stopped
reading. Counters and a producer, no I/O of their own.
"""

from __future__ import annotations

import collections
from collections.abc import Callable

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer

FRAMES_PER_MESSAGE = 8
"""
Frames of every kind (continuations, pings, pongs) a connection may send
for each message its rate allows: room for fragments and keepalive, none
for a flood of frames that are not messages.
"""

MAX_FRAGMENTS = 32
"""Frames one message may come in; browsers send one."""


class TooMany(Exception):
    """An address has all the connections it may have."""


class PerAddress:
    """Open connections per client address, up to C{maximum} each."""

    def __init__(self, maximum: int) -> None:
        self._maximum = maximum
        self._open: collections.Counter[str] = collections.Counter()

    def count_in(self, address: str) -> None:
        """
        One more connection from C{address}.

        @raise TooMany: the address has its maximum already.
        """
        if self._open[address] >= self._maximum:
            raise TooMany(address)
        self._open[address] += 1

    def count_out(self, address: str) -> None:
        self._open[address] -= 1
        if not self._open[address]:
            del self._open[address]


@implementer(IPushProducer)
class Backlog:
    """
    What waits for a client while its transport is over its buffer (Twisted
    says pauseProducing), judged by progress: a client that is reading --
    however slowly -- keeps its connection; one whose queue has not shrunk
    for C{stall} seconds, or that has more than C{max_messages} messages or
    C{max_bytes} bytes waiting, is to be dropped.

    @param queued: how many bytes the transport holds, not yet sent.
    @param seconds: the clock.
    """

    _progress_at: float

    def __init__(self, max_messages: int, max_bytes: int, stall: float,
                 queued: Callable[[], int], seconds: Callable[[], float]) -> None:
        self._max_messages = max_messages
        self._max_bytes = max_bytes
        self._stall = stall
        self._queued = queued
        self._seconds = seconds
        self.paused = False
        self.messages = self.bytes = 0
        self._progress_at = self._after_last = 0
        self._waiting: list[Deferred[None]] = []

    def pauseProducing(self) -> None:
        if not self.paused:
            self.paused = True
            self.messages = 0
            self.bytes = self._after_last = self._queued()
            self._progress_at = self._seconds()

    def resumeProducing(self) -> None:
        self.paused = False
        self._wake()

    def stopProducing(self) -> None:
        self._wake()

    def resumed(self) -> Deferred[None]:
        """A Deferred that fires when the transport takes more again, or is gone."""
        d: Deferred[None] = Deferred()
        self._waiting.append(d)
        return d

    def _wake(self) -> None:
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            d.callback(None)

    def admits(self, size: int) -> bool:
        """Whether one more message of C{size} bytes may be queued."""
        if not self.paused:
            return True
        waiting = self._progress()
        self.messages += 1
        self.bytes = self._after_last = waiting + size
        if self.messages > self._max_messages or self.bytes > self._max_bytes:
            return False
        return self._seconds() - self._progress_at <= self._stall

    def stalled(self) -> bool:
        """Whether, paused, the queue has not shrunk for C{stall} seconds."""
        self._progress()
        return self.paused and self._seconds() - self._progress_at > self._stall

    def _progress(self) -> int:
        """What waits now; the time of progress, if it shrank."""
        waiting = self._queued()
        if waiting < self._after_last:
            self._progress_at = self._seconds()
            self._after_last = waiting
        return waiting

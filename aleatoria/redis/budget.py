"""
What Redis keeps, held to C{--max-history-bytes}: Redis's C{used_memory}
is weighed every few seconds, and past the budget the streams written
longest ago are evicted, a batch at a time, until it is under -- chat is
refused only when Redis is over it with no stream left to evict.
"""

from __future__ import annotations

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredLock
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from aleatoria.domain.evictions import KINDS, Evictions
from aleatoria.domain.refusals import StoreUnavailable
from aleatoria.redis.connection import CommandLink

WEIGH_SECONDS = 5
"""How often Redis is weighed."""
EVICT_BATCH = 100
"""Streams one eviction evicts at most, before Redis is weighed again."""


class Budget(Service):
    """
    @param commands: the L{aleatoria.redis.connection.CommandLink}.
    @param max_bytes: what Redis's C{used_memory} may be (C{None}: no budget).
    @param clock: the reactor.
    """

    _log = Logger()

    def __init__(self, commands: CommandLink, max_bytes: int | None, clock: IReactorTime) -> None:
        self._weigher = LoopingCall(self.weigh)
        self._weigher.clock = clock
        self._commands = commands
        self._max_bytes = max_bytes
        self._used = 0
        """
        Redis's used_memory when last weighed, less what it evicted then
        (freed in the background).
        """
        self._evictable = 0
        """Streams Redis keeps, when last weighed: what could be evicted."""
        self._weighing = DeferredLock()
        self._refusing = False
        self.evictions = Evictions()
        commands.watch(lambda up: self.weigh() if up and self._weigher.running else None)

    def startService(self) -> None:
        super().startService()
        if self._max_bytes is not None:
            self._weigher.start(WEIGH_SECONDS, now=False)

    def stopService(self) -> None:
        super().stopService()
        if self._weigher.running:
            self._weigher.stop()

    def full(self) -> bool:
        """Whether Redis weighed more than the budget with no stream left to evict."""
        return (self._max_bytes is not None and self._used >= self._max_bytes
                and not self._evictable)

    def weigh(self) -> Deferred[None]:
        """
        How much memory Redis uses (history and all: C{INFO memory}); past
        the budget, evict the streams written longest ago, a batch at a
        time, weighing again after each, until under it or none is left.
        One weighing at a time.
        """
        d = self._weighing.run(lambda: Deferred.fromCoroutine(self._evict()))
        return d.addErrback(self._not_weighed)

    async def _evict(self) -> None:
        try:
            while True:
                reply = [int(value) for value in await self._commands.run(
                    "evict", self._max_bytes, EVICT_BATCH)]
                self._used, *evicted, self._evictable, age = reply
                for kind, count in zip(KINDS, evicted, strict=True):
                    self.evictions.add(kind, age / 1000, count)
                # weighed only with a budget
                if self._used <= self._max_bytes or not self._evictable:  # type: ignore[operator]
                    return
        finally:
            self.evictions.tell(self._used, self._max_bytes)  # type: ignore[arg-type]  # a budget
            self._tell_full()

    def _tell_full(self) -> None:
        """Say when chat begins to be refused for want of history to evict, and when it ends."""
        full = self.full()
        if full and not self._refusing:
            self._log.warn(
                "Redis uses {used} bytes, past --max-history-bytes ({budget}), with no "
                "history left to evict: chat is refused (quota_exceeded) until it is under",
                used=self._used, budget=self._max_bytes)
        elif self._refusing and not full:
            self._log.info("Redis is under --max-history-bytes again: chat is stored again")
        self._refusing = full

    def _not_weighed(self, failure: Failure) -> None:
        """An outage is told elsewhere; anything else is a bug to log. Weigh on, anyway."""
        if not failure.check(StoreUnavailable):
            self._log.failure("Weighing Redis failed", failure)

"""
The embedded backend, the default: everything in this process's memory,
no set-up at all.

It keeps the semantics of the Redis backend -- history capped per room and
per pair, each history expiring C{ttl} seconds after its last write, the
pool and matches changed in atomic steps -- so switching backends changes
durability and reach, never behaviour.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from twisted.application.service import Service
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from aleatoria.memory.bans import MemoryBans
from aleatoria.memory.blocks import MemoryBlocks
from aleatoria.memory.bus import LoneBus
from aleatoria.memory.matchmaking import MemoryMatchmaking
from aleatoria.memory.reports import MemoryReports
from aleatoria.memory.sessions import MemorySessions
from aleatoria.memory.streams import MemoryStreams

SWEEP_SECONDS = 60
TELL_SECONDS = 5
"""How often evictions, if any, are told (one line sums them up)."""
LAPSE_SECONDS = 0.25
"""How often held calls whose grace is over are ended, at most."""


class MemoryBackend(Service):
    """
    Streams, sessions, matchmaking, blocks, reports, the lone bus and bans, in memory.

    @param clock: an C{IReactorTime} that times history out.
    @param ttl: seconds a history lives after its last write.
    @param history_size: messages kept per room and per conversation.
    @param max_bytes: what kept messages may weigh (see L{MemoryStreams}).
    @param rng: where random pairings come from.
    @param call_grace: seconds a call is held for a user whose connection
        was lost (0: none); an ended grace is noticed within L{LAPSE_SECONDS}.
    """

    kind = "memory"
    node = "local"
    """The only daemon the embedded backend knows: this one."""
    _log = Logger()

    def __init__(self, clock: IReactorTime, ttl: int, history_size: int,
                 max_bytes: int | None = None, rng: random.Random | None = None,
                 call_grace: float = 0) -> None:
        self.bus = LoneBus()
        self.matchmaking = MemoryMatchmaking(rng, clock.seconds, call_grace)
        self.sessions = MemorySessions(self.matchmaking, clock.seconds)
        self.streams = MemoryStreams(self.bus, clock.seconds, ttl, history_size, max_bytes)
        self.blocks = self.matchmaking.blocks = self.streams.blocks = MemoryBlocks(
            self.matchmaking)
        self.reports = MemoryReports(clock.seconds)
        self.evictions = self.streams.evictions
        self._timers: list[tuple[LoopingCall, float]] = [
            (self._timer(self._sweep, clock), SWEEP_SECONDS)]
        if max_bytes is not None:
            self._timers.append((self._timer(self.streams.tell_evictions, clock),
                                 TELL_SECONDS))
        if call_grace > 0:
            self._timers.append((self._timer(self.sessions.lapse, clock),
                                 min(LAPSE_SECONDS, call_grace / 4)))
        self.bans = MemoryBans()

    def _timer(self, function: Callable[[], object], clock: IReactorTime) -> LoopingCall:
        def guarded() -> None:
            try:
                function()
            except Exception:
                self._log.failure("{name} failed", name=function.__name__)

        call = LoopingCall(guarded)
        call.clock = clock
        return call

    def _sweep(self) -> None:
        self.streams.expire()
        self.sessions.expire()
        self.matchmaking.expire()

    def startService(self) -> None:
        super().startService()
        for call, interval in self._timers:
            call.start(interval, now=False)

    def stopService(self) -> None:
        super().stopService()
        for call, _ in self._timers:
            if call.running:
                call.stop()

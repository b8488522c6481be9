"""
Sessions on Redis: which daemon has each user (C{presence:{user}}), who
is in which room (the Go server's sets, and the live members of each),
and the daemons themselves -- this one's heartbeat, rejoining after an
outage (heartbeat and resync in one script), and reaping the daemons
that died. The one owner of liveness.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from zope.interface import implementer

from aleatoria.domain.matchmaking import Match
from aleatoria.domain.ports import IReceiver, ISessions
from aleatoria.domain.refusals import StoreUnavailable
from aleatoria.domain.values import Claim, MembersPage, RoomsPage
from aleatoria.redis.bus import RedisBus
from aleatoria.redis.connection import CommandLink, Reply, Report
from aleatoria.redis.keys import Keys

BEATS_PER_TTL = 5
"""Heartbeats within one C{node_ttl}: a daemon counts as dead after missing that many."""

RESYNC_TTLS = 6
"""The periodic resync, which heals a release lost to a timeout, every so many C{node_ttl}."""

LAPSE_SECONDS = 1.0
"""How often each daemon ends the held calls whose grace is over, at most."""

LAPSES_AT_ONCE = 100
"""Held calls one sweep ends, at most: the next takes the rest."""


@implementer(ISessions)
class RedisSessions(Service):
    """
    @param commands: the L{aleatoria.redis.connection.CommandLink}.
    @param keys: the L{aleatoria.redis.keys.Keys}.
    @param bus: the L{aleatoria.redis.bus.RedisBus}, whose pub/sub link is
        pinged at every heartbeat.
    @param node: this daemon's id.
    @param node_ttl: seconds after its last heartbeat that a silent daemon
        counts as dead, and its users as gone.
    @param report: the daemon's L{aleatoria.ops.reporting.Report}.
    @param call_grace: seconds a call is held for a user whose connection
        was lost (0: none); whichever daemon sweeps first ends it after --
        every daemon sweeps, holding calls or not.
    """

    _log = Logger()

    def __init__(self, commands: CommandLink, keys: Keys, bus: RedisBus, reactor: IReactorTime,
                 report: Report, *, node: str, node_ttl: float, call_grace: float = 0) -> None:
        self.node = node
        self._commands = commands
        self._keys = keys
        self._bus = bus
        self._reactor = reactor
        self._report = report
        self._node_ttl = node_ttl
        self._life_ms = int(node_ttl * 1000)
        self._receiver: IReceiver = None  # type: ignore[assignment]  # until listen()
        self._joined_at: float | None = None
        self._timers = [self._timer(self._beat, node_ttl / BEATS_PER_TTL),
                        self._timer(self._reap, node_ttl / BEATS_PER_TTL / 2),
                        self._timer(self.resync, node_ttl * RESYNC_TTLS)]
        self._grace_ms = math.ceil(call_grace * 1000)
        # every daemon sweeps, whatever its own grace: another daemon (or
        # this one's former configuration) may have held a call
        self._timers.append(self._timer(
            self._lapse, min(LAPSE_SECONDS, call_grace / 4) if call_grace else LAPSE_SECONDS))
        commands.watch(self._linked)

    def _timer(self, function: Callable[[], object], interval: float) -> tuple[LoopingCall, float]:
        call = LoopingCall(function)
        call.clock = self._reactor
        return call, interval

    @property
    def joined(self) -> bool:
        """Whether this daemon counts among the live ones (since Redis last returned)."""
        return self._joined_at is not None

    def startService(self) -> None:
        super().startService()
        for call, interval in self._timers:
            call.start(interval, now=False)

    def stopService(self) -> None:
        """Stop beating: should the hub not have left, the others reap."""
        super().stopService()
        self._stop_timers()

    def _stop_timers(self) -> None:
        for call, _ in self._timers:
            if call.running:
                call.stop()

    def listen(self, receiver: IReceiver) -> None:
        self._receiver = receiver

    # Sessions

    def claim(self, user: str, address: str = "") -> Deferred[Claim]:
        d = self._commands.run("claim", user, self.node, address, self._grace_ms, capped=False)
        return d.addCallback(lambda reply: Claim(
            reply[0], reply[1], tuple(sorted(reply[5:])),
            int(reply[2]) / 1000 if int(reply[2]) > 0 else None,
            Match(reply[3], reply[4]) if reply[3] else None,
        ))

    def release(self, user: str, budget_refills_in: float = 0,
                hold: bool = False) -> Deferred[str | None]:
        d = self._commands.run("release", user, self.node, math.ceil(budget_refills_in * 1000),
                               self._grace_ms if hold else 0, capped=False)
        return d.addCallback(lambda peer: peer or None)

    def join_room(self, room: str, user: str) -> Deferred[None]:
        return self._commands.run("join", user, room)

    def leave_room(self, room: str, user: str) -> Deferred[None]:
        return self._commands.run("leave", user, room)

    def room_members(self, room: str, limit: int, after: str) -> Deferred[MembersPage]:
        """
        A page of the room's live members, which every change of
        membership keeps (a dead daemon's leave it when they are reaped).
        """
        d = self._commands.run("room_members", room, limit, after)
        return d.addCallback(_page, limit)

    def rooms(self, limit: int, after: str) -> Deferred[RoomsPage]:
        d = self._commands.run("rooms_page", limit, after)
        return d.addCallback(lambda reply: (
            [(reply[i], int(reply[i + 1])) for i in range(1, len(reply), 2)], int(reply[0])))

    def address_of(self, user: str) -> Deferred[str | None]:
        return self._commands.call("get", self._keys("address", user))

    def user_rooms(self, user: str) -> Deferred[list[str]]:
        d = self._commands.call("smembers", self._keys("user_rooms", user))
        return d.addCallback(sorted)

    def whereabouts(self, user: str) -> Deferred[str | None]:
        return self._commands.run("whereabouts", user).addCallback(lambda node: node or None)

    def daemons(self) -> Deferred[list[dict[str, object]]]:
        """Each live daemon's load as of its last beat; this one's as of now."""
        def loads(reply: Reply) -> list[dict[str, object]]:
            found: list[dict[str, object]] = [{"node": reply[i], "connections": int(reply[i + 1]),
                      "rooms": int(reply[i + 2])} for i in range(0, len(reply), 3)]
            return [{"node": self.node, **self._receiver.load()} if d["node"] == self.node
                    else d for d in found]

        return self._commands.run("daemons").addCallback(loads)

    def ping(self) -> Deferred[object]:
        return self._commands.call("ping")

    def leave(self) -> Deferred[None]:
        self._stop_timers()
        d = self._commands.run("leave_daemons", self.node, capped=False)
        d.addCallback(lambda _: self._log.info("Left the daemons sharing Redis"))
        self._quietly(d, "leave")
        return d

    # Liveness

    def _linked(self, up: bool) -> None:
        self._joined_at = None
        if up:
            self.resync()

    def resync(self) -> None:
        """
        Renew the heartbeat and tell Redis who is connected here now, in
        which rooms; close connections another daemon claimed meanwhile.
        """
        joining = self._joined_at is None
        here = json.dumps(self._receiver.sessions_here())
        # after an outage (a failover, perhaps, that lost matches), the calls too
        calls = json.dumps(self._receiver.calls_here()) if joining else ""
        d = self._commands.run("resync", self.node, here, self._life_ms, calls,
                               self._commands.era, capped=False)
        d.addCallback(self._resynced, joining)
        self._quietly(d, "resync")

    def _resynced(self, stale: Iterable[str], joining: bool) -> None:
        """C{stale}: users another daemon claimed meanwhile; their connections here close."""
        if joining:
            self._joined_at = self._reactor.seconds()
            self._log.info("Joined the daemons sharing Redis as node {node}", node=self.node)
        for user in stale:
            self._receiver.replaced_elsewhere(user)

    def _beat(self) -> None:
        if not self._commands.connected:
            return None
        if self._joined_at is None:
            return self.resync()
        d = self.heartbeat()
        d.addCallback(self._lapsed_or_not)
        self._quietly(d, "heartbeat")
        self._bus.link.ping().addErrback(lambda failure: None)
        return None

    def heartbeat(self) -> Deferred[bool]:
        """
        Tell the other daemons this one lives, for C{node_ttl} more seconds;
        fire with whether it was still alive in their eyes until now.
        """
        load = self._receiver.load() if self._receiver else {"connections": 0, "rooms": 0}
        d = self._commands.run("heartbeat", self.node, self._life_ms, load["connections"],
                               load["rooms"], self._commands.era, capped=False)
        return d.addCallback(bool)

    def _lapsed_or_not(self, alive: bool) -> None:
        """
        A lapsed heartbeat means a stall (of Redis, or of this daemon): rejoin,
        with the grace before reaping that a return from an outage gets.
        """
        if not alive:
            self._log.warn("This daemon's heartbeat had lapsed, or Redis is another primary; "
                           "telling Redis who is here again")
            self._joined_at = None
            self.resync()

    def _reap(self) -> None:
        """
        Reap daemons that died -- but not in the first C{node_ttl} after
        this one (re)joined: daemons that lost Redis along with it need as
        long to come back before their silence means anything.
        """
        if self._joined_at is None or self._reactor.seconds() - self._joined_at < self._node_ttl:
            return
        d = self._commands.run("reap", self.node, self._grace_ms, capped=False)
        d.addCallback(self._reaped)
        self._quietly(d, "reap")

    def _reaped(self, entries: Reply) -> None:
        """
        C{entries}: for each user of a dead daemon, cleaned up, its name,
        its live partner (or '') and its rooms.
        """
        for user, peer, *rooms in entries:
            self._receiver.reaped(user, tuple(rooms), peer or None)

    def _lapse(self) -> None:
        """End the held calls whose grace is over, here or anywhere: their partners hear it."""
        if not self._commands.connected:
            return
        d = self._commands.run("lapse", LAPSES_AT_ONCE, capped=False)
        d.addCallback(self._lapsed)
        self._quietly(d, "lapse")

    def _lapsed(self, ended: Reply) -> None:
        for at in range(0, len(ended), 2):
            self._receiver.call_lapsed(ended[at], ended[at + 1])

    def _quietly(self, d: Deferred[Any], operation: str) -> None:
        """An outage is the backend's to report; anything else is reported here."""
        d.addErrback(lambda failure: failure.trap(StoreUnavailable) and None)
        d.addErrback(self._report.errback(f"peers_{operation}"))


def _page(reply: Reply, limit: int) -> MembersPage:
    """A page of members: the page, the count, the next cursor."""
    page = reply[1:limit + 1]
    return page, int(reply[0]), page[-1] if len(reply) > limit + 1 else None

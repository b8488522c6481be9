"""
The hub: who is connected here, and the domains that act for them.

It is handed L{IConnection}s and plain values and answers with values
and pushes; it knows nothing of WebSockets, JSON, Redis, Sentry or
Prometheus. The daemon's assembly injects the backend (streams,
sessions, matchmaking, the bus), the edge's outlet that renders pushes,
the accounting of backend calls and the observers of what happens. The
edge's router calls the domains -- L{rooms}, L{chat}, L{direct},
L{calls}, L{resumer} -- and the server API calls L{admin}. This module
keeps the connection life cycle, what the bus hands over, and the drain
at shutdown.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, gatherResults, succeed
from twisted.logger import Logger
from zope.interface import implementer

from aleatoria.domain.admin import Admin
from aleatoria.domain.backend import Backend
from aleatoria.domain.bans import Bans
from aleatoria.domain.call_chat import CallChat
from aleatoria.domain.calls import Calls
from aleatoria.domain.chat import Chat, Unlimited
from aleatoria.domain.clock import MessageClock, format_ns
from aleatoria.domain.connections import Connections
from aleatoria.domain.delivery import Delivery
from aleatoria.domain.direct import Direct
from aleatoria.domain.events import (
    CallEnded,
    CallStarted,
    Connected,
    DirectMessage,
    Disconnected,
    Fact,
    MemberJoined,
    MemberLeft,
    Push,
    Reaped,
    ReplacedHere,
    RoomMessage,
    Signal,
)
from aleatoria.domain.limits import Quotas
from aleatoria.domain.matchmaking import PairingRules
from aleatoria.domain.ports import IAccounting, IConnection, IObserver, IOutlet, IReceiver
from aleatoria.domain.reports import Reports
from aleatoria.domain.resume import Resumer
from aleatoria.domain.rooms import RoomQuota, Rooms
from aleatoria.domain.safety import Safety
from aleatoria.domain.values import Claim
from aleatoria.domain.work import FAILED, Done, Work, all_done


@dataclass(frozen=True)
class Rules:
    """
    The domain's settings: longest chat content (UTF-8 bytes), rooms per
    connection, the room size up to which members hear each other come and
    go, who may signal whom (L{Calls}), the L{RoomQuota}, and how many
    users one may block (L{Safety}), how many reports one may file
    an hour and how long each is kept (L{Reports}), and the L{PairingRules}.
    """

    max_content: int = 4096
    max_rooms: int = 50
    presence_limit: int = 100
    signaling: str = "any"
    room_quota: RoomQuota = field(default_factory=RoomQuota)
    max_blocks: int = 1000
    reports_per_hour: int = 20
    report_ttl: int = 720 * 3600
    pairing: PairingRules = field(default_factory=PairingRules)


@implementer(IReceiver)
class Hub(Service):
    """
    @param backend: streams, sessions, matchmaking, blocks, reports, bus and
        bans (the seams of L{aleatoria.domain.ports}), as attributes of one object.
    @param outlet: the L{aleatoria.domain.ports.IOutlet}.
    @param clock: a L{aleatoria.domain.clock.MessageClock}, for createTimes.
    @param accounting: the L{aleatoria.domain.ports.IAccounting}.
    @param rules: the L{Rules}.
    @param quotas: what a user, and its client address, may store, an
        L{aleatoria.domain.limits.Quotas}; no limit by default.
    """

    _log = Logger()

    def __init__(self, backend: Backend, outlet: IOutlet, clock: MessageClock,
                 accounting: IAccounting, *, rules: Rules | None = None,
                 quotas: Quotas | None = None) -> None:
        rules = rules or Rules()
        self.streams = backend.streams
        self.sessions = backend.sessions
        self.matchmaking = backend.matchmaking
        self.bus = backend.bus
        self.blocks = backend.blocks
        self.reports = backend.reports
        self.clock = clock
        self.work = Work(accounting)
        self.connections = Connections()
        self.delivery = Delivery(self.connections, outlet)
        self._observers: list[IObserver] = []
        self.rooms = Rooms(self, rules.max_rooms, rules.presence_limit, rules.room_quota)
        self.chat = Chat(self, rules.max_content, quotas or Unlimited())
        self.direct = Direct(self)
        self.calls = Calls(self, rules.signaling, rules.pairing)
        self.call_chat = CallChat(self, rules.max_content)
        self.resumer = Resumer(self, rules.max_rooms)
        self.admin = Admin(self, rules.max_content)
        self.safety = Safety(self, rules.max_blocks)
        self.reported = Reports(self, rules.reports_per_hour, rules.report_ttl)
        self._closing: dict[IConnection, Deferred[None]] = {}
        self.bus.listen(self)
        self.sessions.listen(self)
        self.bans = Bans(self, backend.bans)
        """The bans (the backend's own: its C{bans}, L{aleatoria.domain.safety_ports.IBans})."""

    def observe(self, observer: IObserver) -> None:
        """Have C{observer}, an L{aleatoria.domain.ports.IObserver}, hear every fact."""
        self._observers.append(observer)

    def tell(self, fact: Fact) -> None:
        for observer in self._observers:
            observer.happened(fact)

    # Introspection, for /ready, /metrics and tests

    @property
    def connection_count(self) -> int:
        return len(self.connections)

    def room_names(self) -> list[str]:
        """Names of the rooms with at least one connected member."""
        return sorted(self.rooms.membership.rooms())

    def members(self, room: str) -> list[str]:
        return sorted(self.rooms.membership.members(room))

    # Connection life cycle

    def connected(self, conn: IConnection, room: str) -> None:
        """
        C{conn} finished its handshake as C{conn.user_id}, asking for C{room}.
        An older connection of the same user is closed as replaced.
        """
        if not self.running:
            conn.going_away()
            return
        user = conn.user_id
        old = self.connections.get(user)
        if old is not None:
            self.tell(ReplacedHere(user, elsewhere=False))
            self._detach(old, hold=True)
            old.replaced()
        self.connections.add(conn)
        self.delivery.joined(user, ("inbox", user))
        self.tell(Connected(user, conn.address, room, len(self.connections)))
        d = self.sessions.claim(user, conn.address).addCallback(self._claimed, user)
        self.work.watch(d, "claim")
        self.rooms.enter(conn, room, quiet=True)

    def _claimed(self, claim: Claim, user: str) -> None:
        """
        The claim ended an earlier session of C{user} (on another daemon, or
        a dead one): hang up its call, tell its rooms it left, and have the
        daemon that held it close that connection, silently. What the user
        spent of its message budget there, it has spent here.
        """
        conn = self.connections.get(user)
        if claim.budget_refills_in is not None and conn is not None:
            conn.spent_elsewhere(claim.budget_refills_in)
        if claim.former_peer is not None:
            self.calls.end(claim.former_peer, user, "disconnected")
        for room in claim.rooms:
            if room not in self.rooms.rooms_of(user):
                self.rooms.announce(room, MemberLeft(room, user, self.stamp()))
        if claim.previous_owner not in (None, self.sessions.node):
            self.bus.replaced(claim.previous_owner, user)
        if claim.resumed is not None and conn is not None:
            self.calls.resumed(user, claim.resumed)

    def disconnected(self, conn: IConnection, clean: bool = True) -> None:
        """C{conn} is closed (lost, unless C{clean}); forget it unless it was replaced already."""
        closing = self._closing.pop(conn, None)
        if closing is not None:
            closing.callback(None)
        if not self.connections.current(conn):
            return
        rooms = sorted(self.rooms.rooms_of(conn.user_id))
        self._detach(conn, hold=not clean)
        self.tell(Disconnected(conn.user_id, conn.address, rooms, len(self.connections)))

    def _detach(self, conn: IConnection, announce: bool = True, hold: bool = False) -> Done:
        """
        Take the user out of every room (telling the members, unless the
        daemon that replaced it does), and have its session released: out
        of the pool, its call ended (or with C{hold}, held). Fire with
        L{FAILED} unless all of that, the telling included, went through.
        """
        user = conn.user_id
        partner = self.calls.partner(user) if hold else None
        self.connections.remove(conn)
        self.delivery.left(user, ("inbox", user))
        self.delivery.forget(user)
        started = self.calls.forget(user)
        work = self.rooms.exit_all(user, announce)
        released = self.work.watch(
            self.sessions.release(user, conn.budget_refills_in(), hold), "release")
        released.addCallback(self.calls.released, user, partner, started)
        work.append(released)
        return all_done(work)

    def stamp(self) -> str:
        """The createTime of what is stamped now."""
        return format_ns(self.clock.next_ns())

    # Pushes, to users wherever they are

    def arrived(self, user: str, push: Push) -> None:
        """
        C{push} for C{user}, connected here: news of its calls passes
        through L{Calls} on its way.
        """
        if isinstance(push, CallStarted):
            overtaken = self.calls.started(push)
            if overtaken is not None:
                self.delivery.send(user, overtaken)
        elif isinstance(push, CallEnded):
            if not self.calls.ended(push):
                return
        elif isinstance(push, Signal) and push.kind == "hangup":
            if not self.calls.hung_up_by(push.sender, user):
                return
        self.delivery.send(user, push)

    def deliver(self, user: str, push: Push) -> Deferred[bool]:
        """
        C{push} to C{user}, here or on another daemon; fire with whether it
        is connected anywhere (errback when the bus could not hand it over).
        """
        if user in self.connections:
            self.arrived(user, push)
            return succeed(True)
        return self.work.timed(self.bus.deliver(user, push), "deliver")

    def notify(self, user: str, push: Push) -> Deferred[object]:
        """Deliver where no client waits for the outcome (L{FAILED} if it failed)."""
        return self.work.watch(self.deliver(user, push), "deliver", timed=False)

    # From the backends (IReceiver)

    def sessions_here(self) -> dict[str, list[str]]:
        return {user: sorted(self.rooms.rooms_of(user)) for user in self.connections.users()}

    def calls_here(self) -> dict[str, list[str]]:
        return self.calls.here()

    def load(self) -> dict[str, int]:
        return {"connections": len(self.connections), "rooms": len(self.rooms.membership.rooms())}

    def room_post(self, message: RoomMessage) -> None:
        self.chat.room_post(message)

    def inbox_post(self, user: str, message: DirectMessage) -> bool:
        return self.direct.inbox_post(user, message)

    def deliver_local(self, user: str, push: Push) -> None:
        if user in self.connections:
            self.arrived(user, push)

    def broadcast_local(self, room: str, push: MemberJoined | MemberLeft) -> None:
        self.rooms.local(room, push)

    def replaced_elsewhere(self, user: str) -> None:
        conn = self.connections.get(user)
        if conn is not None:
            self.tell(ReplacedHere(user, elsewhere=True))
            self._detach(conn, announce=False)
            conn.replaced()

    def kicked(self, user: str, reason: str) -> None:
        self.admin.kick_here(user, reason)

    def reaped(self, user: str, rooms: Iterable[str], peer: str | None) -> None:
        self.tell(Reaped(user))
        for room in rooms:
            self.rooms.announce(room, MemberLeft(room, user, self.stamp()))
        if peer is not None:
            self.calls.end(peer, user, "disconnected")

    def call_lapsed(self, user: str, peer: str) -> None:
        self.calls.end(peer, user, "disconnected")

    # Service

    def stopService(self) -> Deferred[list[Any]]:
        """
        Close every client with 1001, release every session at once (rooms,
        pool cleaned, members told, calls held); if all went through, leave
        the other daemons (else they reap the rest once its heartbeat
        lapses). Fires when the releases are done and the clients gone.
        """
        super().stopService()
        conns = self.connections.all()
        self._log.info("Shutting down: closing {count} connections (1001) and releasing "
                       "their sessions", count=len(conns))
        for conn in conns:
            self._closing[conn] = Deferred()
            conn.going_away()
        released: Deferred[Any] = all_done([self._detach(conn, hold=True) for conn in conns])
        released.addCallback(self._leave)  # in place: it fires with what leaving does
        closed = list(self._closing.values())
        return gatherResults([released, *closed], consumeErrors=True)

    def _leave(self, released: object) -> Deferred[None] | None:
        if released is not FAILED:
            self._log.info("Every session released; leaving the other daemons")
            return self.sessions.leave()
        self._log.warn(
            "Not every session could be released at shutdown; the other "
            "daemons will clean up the rest when this one's heartbeat lapses"
        )
        return None

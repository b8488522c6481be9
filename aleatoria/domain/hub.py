"""
The hub: who is connected here, and where each of their messages goes.

It is handed L{IConnection}s and plain values, and knows nothing of
WebSockets, JSON, Redis, Sentry or Prometheus: the service injects the
store, the peers, the reporter and the metrics, and L{aleatoria.routes}
turns each client message into a call of one of its domains --
L{rooms}, L{direct}, L{chat} and L{calls} -- and their answers and
refusals into replies; the server API (L{aleatoria.api}) calls L{admin}.
This module keeps the connection life cycle and the drain at shutdown;
the ways to send are the L{outbox}'s.
"""

from twisted.application.service import Service
from twisted.internet.defer import Deferred, gatherResults
from twisted.logger import Logger
from zope.interface import implementer

from aleatoria.domain.admin import Admin
from aleatoria.domain.calls import Calls
from aleatoria.domain.chat import Chat, Unlimited
from aleatoria.domain.direct import Direct
from aleatoria.domain.outbox import FAILED, Outbox, all_done
from aleatoria.domain.ports import IReceiver
from aleatoria.domain.resume import Resumer
from aleatoria.domain.rooms import Rooms
from aleatoria.memory.bus import LonePeers


@implementer(IReceiver)
class Hub(Service):
    """
    @param store: the L{aleatoria.interfaces.IStore}.
    @param prepare: turns an L{Envelope} into what L{IConnection.send} takes.
    @param message_clock: a L{aleatoria.clock.MessageClock}, for C{createTime}.
    @param peers: the L{aleatoria.interfaces.IPeers}; alone by default.
    @param reporter: the L{aleatoria.reporting.Reporter}.
    @param metrics: the L{aleatoria.metrics.Metrics}.
    @param max_content: longest chat content, in UTF-8 bytes.
    @param max_rooms: rooms one connection may be in.
    @param presence_limit: room size (on this daemon) up to which members
        hear each other join and leave.
    @param signaling: who may signal whom (L{aleatoria.hub.calls.Calls}).
    @param quotas: what a user, and its client address, may store, an
        L{aleatoria.limits.Quotas}; no limit by default.
    @param room_quota: rooms, members in each, and rooms one address may
        open, a L{rooms.RoomQuota}.
    """

    _log = Logger()

    def __init__(self, store, prepare, message_clock, peers=None, *, reporter, metrics,
                 max_content=4096, max_rooms=50, presence_limit=100, signaling="any",
                 quotas=None, room_quota=None):
        self._store = store
        self._peers = peers or LonePeers(store)
        self._out = Outbox(prepare, message_clock, self._peers, reporter, metrics, store.kind)
        self._connections = self._out.connections
        self.rooms = Rooms(self._out, store, max_rooms, presence_limit, room_quota)
        self.direct = Direct(self._out, store)
        self.chat = Chat(self._out, store, self.rooms, self.direct, max_content,
                         quotas or Unlimited())
        self.calls = Calls(self._out, store, metrics, signaling)
        self.resumer = Resumer(self._out, store, self.rooms, max_rooms)
        self.admin = Admin(self._out, store, self._peers, self.rooms, self.direct, max_content)
        self._closing = {}
        self._peers.listen(self)

    # Introspection, for /ready, /metrics and tests

    @property
    def connection_count(self):
        return len(self._connections)

    def is_online(self, user):
        return user in self._connections

    def room_names(self):
        """Names of the rooms with at least one connected member."""
        return sorted(self.rooms.membership.rooms())

    def members(self, room):
        return sorted(self.rooms.membership.members(room))

    # Connection life cycle

    def connected(self, conn, room):
        """
        C{conn} finished its handshake as C{conn.user_id}, asking for C{room}.
        An older connection of the same user is closed as replaced.
        """
        if not self.running:
            conn.going_away()
            return
        user = conn.user_id
        old = self._connections.get(user)
        if old is not None:
            self._log.info("{user} replaced by a new connection", user=user)
            self._detach(old)
            old.replaced()
        self._connections[user] = conn
        self._out.expect_first(user, ("inbox", user))
        self._log.info(
            "{user} connected from {peer}, room {room!r}; {count} online",
            user=user, peer=conn.peer, room=room, count=len(self._connections),
        )
        conn.report.breadcrumb(
            "websocket", "Connected", room=room, clients=len(self._connections)
        )
        d = self._store.claim(user)
        d.addCallback(self._claimed, user)
        self._out.watch(d, "claim")
        self.rooms.enter(user, room, logged=False)

    def _claimed(self, claim, user):
        """
        The claim ended an earlier session of C{user} (on another daemon, or
        a dead one): hang up its call, tell its rooms it left, and have the
        daemon that held it close that connection, silently. What the user
        spent of its message budget there, it has spent here.
        """
        conn = self._connections.get(user)
        if claim.rested_in is not None and conn is not None:
            conn.rest_in(claim.rested_in)
        if claim.former_peer is not None:
            self.calls.hangup_for(claim.former_peer, user, "disconnected")
        for room in claim.rooms:
            if room not in self.rooms.rooms_of(user):
                self.rooms.announce(room, "user_left", user)
        if claim.previous_owner not in (None, self._peers.node):
            self._peers.replaced(claim.previous_owner, user)

    def disconnected(self, conn):
        """C{conn} is closed; forget it unless it was replaced already."""
        closing = self._closing.pop(conn, None)
        if closing is not None:
            closing.callback(None)
        if not self._out.current(conn):
            return
        rooms = sorted(self.rooms.rooms_of(conn.user_id))
        self._detach(conn)
        self._log.info(
            "{user} disconnected from {peer}; {count} online",
            user=conn.user_id, peer=conn.peer, count=len(self._connections),
        )
        conn.report.breadcrumb(
            "websocket", "Disconnected", rooms=rooms, clients=len(self._connections)
        )

    def _detach(self, conn, announce=True):
        """
        Take the user out of every room (telling the members, unless the
        daemon that replaced it does), and have the store release it: out
        of the pool, and its call hung up. Fire with L{FAILED} unless all of
        that, the telling included, went through.
        """
        user = conn.user_id
        del self._connections[user]
        self._out.forget_first(user, ("inbox", user))
        self._out.resumes.pop(user, None)
        self.calls.forget(user)
        work = self.rooms.exit_all(user, announce)
        released = self._out.watch(self._store.release(user, conn.rested_in()), "release")
        released.addCallback(self._released, user)
        work.append(released)
        return all_done(work)

    def _released(self, former_peer, user):
        if former_peer in (None, FAILED):
            return former_peer
        return self.calls.hangup_for(former_peer, user, "disconnected")

    # Answering clients (for L{aleatoria.routes})

    def current(self, conn):
        """Whether C{conn} is its user's connection (not replaced, not gone)."""
        return self._out.current(conn)

    def reply(self, conn, kind, payload, room="", message_id=""):
        """Send C{conn} a message of the server's own, stamped now."""
        self._out.reply(conn, kind, payload, room, message_id)

    def tracing(self, trace):
        """Account the store work started from now on to C{trace} (C{None}: to none)."""
        self._out.trace = trace

    # From the other daemons (IReceiver)

    def sessions(self):
        return {user: sorted(self.rooms.rooms_of(user)) for user in self._connections}

    def deliver_local(self, user, envelope):
        conn = self._connections.get(user)
        if conn is not None:
            self._out.send(conn, envelope)

    def broadcast_local(self, room, envelope):
        self.rooms.local(room, envelope)

    def room_post(self, room, envelope):
        self.rooms.stream(room, envelope)

    def inbox_post(self, user, envelope):
        return self.direct.stream(user, envelope)

    def replaced_elsewhere(self, user):
        conn = self._connections.get(user)
        if conn is not None:
            self._log.info("{user} replaced by a connection to another daemon", user=user)
            self._detach(conn, announce=False)
            conn.replaced()

    def kicked(self, user, reason):
        self.admin.kick_here(user, reason)

    def load(self):
        return {"connections": len(self._connections),
                "rooms": len(self.rooms.membership.rooms())}

    def reaped(self, user, rooms, peer):
        for room in rooms:
            self.rooms.announce(room, "user_left", user)
        if peer is not None:
            self.calls.hangup_for(peer, user, "disconnected")

    # Service

    def stopService(self):
        """
        Close every client with 1001 and release every session at once,
        without waiting for the clients to answer: rooms, the pool and
        calls are cleaned, partners and members everywhere told. Only when
        all of that went through does this daemon leave the others; if not,
        they reap what is left once its heartbeat lapses. Fires when the
        releases are done and the clients are gone.
        """
        super().stopService()
        conns = list(self._connections.values())
        for conn in conns:
            self._closing[conn] = Deferred()
            conn.going_away()
        released = all_done([self._detach(conn) for conn in conns])
        released.addCallback(self._leave)
        closed = list(self._closing.values())
        return gatherResults([released, *closed], consumeErrors=True)

    def _leave(self, released):
        if released is not FAILED:
            return self._peers.leave()
        self._log.warn(
            "Not every session could be released at shutdown; the other "
            "daemons will clean up the rest when this one's heartbeat lapses"
        )
        return None

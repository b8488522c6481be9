"""
The hub: who is connected here, and where each of their messages goes.

It is handed decoded L{Envelope}s and L{IConnection}s and knows nothing of
WebSockets, JSON, Redis, Sentry or Prometheus: the service injects the
store, the peers, the reporter and the metrics. This module keeps the
connection life cycle, the dispatch of message types and the drain at
shutdown; the domains are L{rooms}, L{direct}, L{chat} and L{calls}, and the ways
to send are the L{outbox}'s.
"""

from twisted.application.service import Service
from twisted.internet.defer import Deferred, gatherResults
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ..interfaces import IReceiver
from ..peers import LonePeers
from .calls import Calls
from .chat import Chat
from .direct import Direct
from .outbox import FAILED, Outbox, all_done
from .rooms import Rooms


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
    """

    _log = Logger()

    def __init__(self, store, prepare, message_clock, peers=None, *, reporter, metrics,
                 max_content=4096, max_rooms=50):
        self._store = store
        self._peers = peers or LonePeers(store.node)
        self._reporter = reporter
        self._metrics = metrics
        self._out = Outbox(prepare, message_clock, self._peers, reporter, metrics, store.kind)
        self._connections = self._out.connections
        self._rooms = Rooms(self._out, store, max_rooms)
        self._direct = Direct(self._out, store)
        self._calls = Calls(self._out, store, metrics)
        self._closing = {}
        rooms, calls = self._rooms, self._calls
        self._handlers = {
            "chat_message": Chat(self._out, self._rooms, self._direct, max_content).chat_message,
            "join_room": rooms.join_room,
            "leave_room": rooms.leave_room,
            "get_rooms": rooms.get_rooms,
            "get_room_members": rooms.get_room_members,
            "get_recent_messages": rooms.get_recent_messages,
            "get_direct_messages": self._direct.get_direct_messages,
            "user_available_webrtc": calls.available,
            "user_unavailable_webrtc": calls.unavailable,
            "request_random_peer": calls.request_random_peer,
            "webrtc_offer": calls.relay,
            "webrtc_answer": calls.relay,
            "webrtc_candidate": calls.relay,
            "hangup": calls.hangup,
            "assign_role": calls.forbidden,
        }

    # Introspection, for /ready, /metrics and tests

    @property
    def connection_count(self):
        return len(self._connections)

    def is_online(self, user):
        return user in self._connections

    def rooms(self):
        """Names of the rooms with at least one connected member."""
        return sorted(self._rooms.membership.rooms())

    def members(self, room):
        return sorted(self._rooms.membership.members(room))

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
        self._rooms.enter(user, room)

    def _claimed(self, claim, user):
        """
        The claim ended an earlier session of C{user} (on another daemon, or
        a dead one): hang up its call, tell its rooms it left, and have the
        daemon that held it close that connection, silently.
        """
        if claim.former_peer is not None:
            self._calls.hangup_for(claim.former_peer, user, "disconnected")
        for room in claim.rooms:
            if room not in self._rooms.rooms_of(user):
                self._rooms.announce(room, "user_left", user)
        if claim.previous_owner not in (None, self._peers.node):
            self._peers.replaced(claim.previous_owner, user)

    def disconnected(self, conn):
        """C{conn} is closed; forget it unless it was replaced already."""
        closing = self._closing.pop(conn, None)
        if closing is not None:
            closing.callback(None)
        if not self._out.current(conn):
            return
        rooms = sorted(self._rooms.rooms_of(conn.user_id))
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
        work = self._rooms.exit_all(user, announce)
        released = self._out.watch(self._store.release(user), "release")
        released.addCallback(self._released, user)
        work.append(released)
        return all_done(work)

    def _released(self, former_peer, user):
        if former_peer in (None, FAILED):
            return former_peer
        return self._calls.hangup_for(former_peer, user, "disconnected")

    # Incoming messages

    def received(self, conn, envelope):
        """
        Route one decoded message from C{conn}, traced as one transaction. An
        exception in a handler is reported and answered; the connection and
        the daemon go on.
        """
        if not self._out.current(conn):
            return
        kind = envelope.type
        handler = self._handlers.get(kind)
        if handler is None:
            self._metrics.received.labels("unknown").inc()
            conn.report.capture_message(
                "Unknown message type", operation="unknown_message_type",
                messageType=kind[:64],
            )
            self._out.refuse(conn, "unknown_type", f"Unknown message type {kind!r}.")
            return
        self._metrics.received.labels(kind).inc()
        self._out.trace = trace = self._reporter.trace(conn.report, kind)
        try:
            handler(conn, envelope)
        except Exception:
            conn.report.failed(
                self._log, Failure(), f"Handling {kind} failed",
                component="hub", operation="handle_message", messageType=kind,
            )
            self._out.refuse(conn, "unavailable", "The server could not handle that message.")
        finally:
            self._out.trace = None
            trace.handled()

    # From the other daemons (IReceiver)

    def sessions(self):
        return {user: sorted(self._rooms.rooms_of(user)) for user in self._connections}

    def deliver_local(self, user, envelope):
        conn = self._connections.get(user)
        if conn is not None:
            self._out.send(conn, envelope)

    def broadcast_local(self, room, envelope):
        self._rooms.local(room, envelope)

    def replaced_elsewhere(self, user):
        conn = self._connections.get(user)
        if conn is not None:
            self._log.info("{user} replaced by a connection to another daemon", user=user)
            self._detach(conn, announce=False)
            conn.replaced()

    def reaped(self, user, rooms, peer):
        for room in rooms:
            self._rooms.announce(room, "user_left", user)
        if peer is not None:
            self._calls.hangup_for(peer, user, "disconnected")

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

"""
The hub: who is connected, who is in which room, and where each message goes.

It is handed decoded L{Envelope}s and L{IConnection}s and knows nothing of
WebSockets or JSON, so it is tested without a socket. It answers every
client->server type of PROTOCOL.md section 3 with the errors of section 4
and the extensions of section 5, and persists through an L{IStore}.
"""

import uuid

from msgspec.structs import replace
from twisted.application.service import Service
from twisted.internet.defer import Deferred, gatherResults, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import Attribute, Interface, implementer

from .clock import format_ns, parse_rfc3339
from .cluster import IReceiver, LoneDaemon
from .matchmaking import POLITE, Match
from .messages import SYSTEM, Envelope, valid_room, valid_user_id
from .metrics import Metrics
from .reporting import Reporter, truncated
from .store import StoreUnavailable

MAX_HISTORY_PAGE = 100
"""The most messages one history request returns, whatever C{limit} asks."""

MAX_MESSAGE_ID = 128

CLOSE_GOING_AWAY = 1001
CLOSE_REPLACED = 4001

NOT_IN_ROOM = "You are not in that room. Join the room first."

RETRY_AFTER_SECONDS = 5
SHUTTING_DOWN = f"server shutting down; retry-after={RETRY_AFTER_SECONDS}"
"""
The reason of the 1001 close at shutdown: a hint, in the manner of HTTP's
Retry-After, of when to reconnect (a restart under systemd takes about that).
"""


class IConnection(Interface):
    """What the hub needs of one client's connection."""

    user_id = Attribute("The identity the handshake established.")
    peer = Attribute("The remote address, for log lines.")
    report = Attribute("The connection's L{aleatoria.reporting.Report}.")

    def may_join(room):
        """Whether the connection's credentials allow joining C{room}."""

    def send(prepared):
        """Queue a message made by the hub's C{prepare} function."""

    def close(code, reason):
        """Start closing the connection with a WebSocket close code."""


@implementer(IReceiver)
class Hub(Service):
    """
    @param store: the L{aleatoria.store.IStore}.
    @param prepare: turns an L{Envelope} into what L{IConnection.send}
        takes; called once per distinct message, however many recipients.
    @param clock: a L{aleatoria.clock.MessageClock} for C{createTime}.
    @param reactor: an L{IReactorTime}, for the shutdown grace period.
    @param cluster: the L{ICluster} that reaches users on other daemons;
        alone by default.
    @param reporter: the L{aleatoria.reporting.Reporter}; off by default.
    @param metrics: the L{aleatoria.metrics.Metrics}.
    @param max_content: longest chat content, in UTF-8 bytes.
    @param max_rooms: rooms one connection may be in.
    """

    _log = Logger()

    def __init__(self, store, prepare, clock, reactor, cluster=None, reporter=None,
                 metrics=None, max_content=4096, max_rooms=50):
        self._store = store
        self._cluster = cluster or LoneDaemon()
        self._reporter = reporter or Reporter()
        self._metrics = metrics or Metrics()
        self._trace = None
        self._max_content = max_content
        self._max_rooms = max_rooms
        self._prepare = prepare
        self._clock = clock
        self._reactor = reactor
        self._connections = {}
        self._members = {}
        self._rooms_of = {}
        self._closing = {}
        self._handlers = {
            "chat_message": self._chat_message,
            "join_room": self._join_room,
            "leave_room": self._leave_room,
            "get_rooms": self._get_rooms,
            "get_room_members": self._get_room_members,
            "user_available_webrtc": self._available,
            "user_unavailable_webrtc": self._unavailable,
            "request_random_peer": self._request_random_peer,
            "webrtc_offer": self._relay,
            "webrtc_answer": self._relay,
            "webrtc_candidate": self._relay,
            "hangup": self._hangup,
            "get_recent_messages": self._get_recent_messages,
            "get_direct_messages": self._get_direct_messages,
            "assign_role": self._forbidden,
        }

    # Introspection, for /ready and tests

    @property
    def connection_count(self):
        return len(self._connections)

    def is_online(self, user):
        return user in self._connections

    def rooms(self):
        """Names of the rooms with at least one connected member."""
        return sorted(self._members)

    def members(self, room):
        return sorted(self._members.get(room, ()))

    # Connection life cycle

    def connected(self, conn, room):
        """
        C{conn} finished its handshake as C{conn.user_id}, asking for C{room}.
        An older connection of the same user is closed as replaced.
        """
        if not self.running:
            conn.close(CLOSE_GOING_AWAY, SHUTTING_DOWN)
            return
        user = conn.user_id
        old = self._connections.get(user)
        if old is not None:
            self._log.info("{user} replaced by a new connection", user=user)
            self._detach(old)
            old.close(CLOSE_REPLACED, "replaced")
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
        self._watch(d, "claim")
        self._enter(user, room)

    def _claimed(self, claim, user):
        """
        The claim ended an earlier session of C{user} (on another daemon, or
        a dead one): hang up its call, tell its rooms it left, and have the
        daemon that held it close that connection, silently.
        """
        if claim.former_peer is not None:
            self._hangup_for(claim.former_peer, user, "disconnected")
        for room in claim.rooms:
            if room not in self._rooms_of.get(user, ()):
                self._announce(room, "user_left", user)
        if claim.previous_owner not in (None, self._cluster.node):
            self._cluster.replaced(claim.previous_owner, user)

    def disconnected(self, conn):
        """C{conn} is closed; forget it unless it was replaced already."""
        closing = self._closing.pop(conn, None)
        if closing is not None:
            closing.callback(None)
        if self._connections.get(conn.user_id) is not conn:
            return
        rooms = sorted(self._rooms_of.get(conn.user_id, ()))
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
        work = [self._exit(user, room, persist=False, announce=announce)
                for room in sorted(self._rooms_of.get(user, ()))]
        released = self._watch(self._store.release(user), "release")
        released.addCallback(self._released, user)
        work.append(released)
        return _all_done(work)

    def _released(self, former_peer, user):
        if former_peer in (None, FAILED):
            return former_peer
        return self._hangup_for(former_peer, user, "disconnected")

    # Incoming messages

    def received(self, conn, envelope):
        """
        Route one decoded message from C{conn}, traced as one transaction. An
        exception in a handler is reported and answered; the connection and
        the daemon go on.
        """
        if self._connections.get(conn.user_id) is not conn:
            return
        kind = envelope.type
        handler = self._handlers.get(kind)
        if handler is None:
            self._metrics.received.labels("unknown").inc()
            conn.report.capture_message(
                "Unknown message type", operation="unknown_message_type",
                messageType=kind[:64],
            )
            self._refuse(conn, "unknown_type", f"Unknown message type {kind!r}.")
            return
        self._metrics.received.labels(kind).inc()
        self._trace = trace = self._reporter.trace(conn.report, kind)
        try:
            handler(conn, envelope)
        except Exception:
            conn.report.failed(
                self._log, Failure(), f"Handling {kind} failed",
                component="hub", operation="handle_message", messageType=kind,
            )
            self._refuse(conn, "unavailable", "The server could not handle that message.")
        finally:
            self._trace = None
            trace.handled()

    def rate_limited(self, conn, retry_after_ms):
        """C{conn} sends faster than its limit; this message was dropped."""
        self._metrics.errors.labels("rate_limited").inc()
        self._reply(conn, "error", {
            "error": "Too many messages; slow down.", "code": "rate_limited",
            "retryAfter": retry_after_ms,
        })

    def malformed(self, conn, details, raw):
        """
        C{conn} sent a frame that is not a valid envelope (compat reply). The
        raw frame, cut to 1 KiB, goes to the report: the one place client
        content may leave the process.
        """
        self._log.info(
            "Malformed frame from {user}: {details}", user=conn.user_id, details=details
        )
        self._metrics.errors.labels("error_response").inc()
        conn.report.capture_message(
            "Unparsable frame", operation="parse_message", details=details,
            extra={"raw": truncated(raw)},
        )
        now = self._now()
        self._send(conn, Envelope(
            type="error_response",
            fromUser=SYSTEM,
            toUser=conn.user_id,
            payload={"error": "Invalid message structure", "details": details},
            messageId=f"err-{now}",
            createTime=now,
        ))

    # Rooms

    def _join_room(self, conn, envelope):
        room, user = envelope.room, conn.user_id
        if not valid_room(room):
            return self._refuse(conn, "invalid_message", _ROOM_RULE)
        rooms = self._rooms_of.get(user, ())
        if room not in rooms and len(rooms) >= self._max_rooms:
            return self._refuse(
                conn, "forbidden", f"You are in {self._max_rooms} rooms; leave one first."
            )
        if not conn.may_join(room):
            return self._refuse(conn, "forbidden", "Your token does not let you join that room.")
        self._enter(user, room)
        self._reply(conn, "room_joined", {"room": room, "action": "joined"}, room=room)

    def _leave_room(self, conn, envelope):
        room = envelope.room
        if not valid_room(room):
            return self._refuse(conn, "invalid_message", _ROOM_RULE)
        if room in self._rooms_of.get(conn.user_id, ()):
            self._exit(conn.user_id, room)
        self._reply(conn, "room_left", {"room": room, "action": "left"}, room=room)

    def _enter(self, user, room):
        members = self._members.setdefault(room, set())
        if user in members:
            return
        self._announce(room, "user_joined", user)
        members.add(user)
        self._rooms_of.setdefault(user, set()).add(room)
        self._watch(self._store.join_room(room, user), "join_room",
                    self._connections[user], reply=False)
        self._log.info(
            "{user} joined {room!r} ({count} members)",
            user=user, room=room, count=len(members),
        )
        self._connections[user].report.breadcrumb(
            "room", "Joined room", room=room, members=len(members)
        )

    def _exit(self, user, room, persist=True, announce=True):
        """
        Take C{user} out of C{room} and tell the members. C{persist} is false
        when the store's release of the user does that part.
        """
        members = self._members[room]
        members.discard(user)
        if not members:
            del self._members[room]
        rooms = self._rooms_of[user]
        rooms.discard(room)
        if not rooms:
            del self._rooms_of[user]
        told = self._announce(room, "user_left", user) if announce else succeed(None)
        if persist:
            self._watch(self._store.leave_room(room, user), "leave_room")
        self._log.info("{user} left {room!r}", user=user, room=room)
        conn = self._connections.get(user)
        if conn is not None:
            conn.report.breadcrumb(
                "room", "Left room", room=room, members=len(members)
            )
        return told

    def _announce(self, room, kind, user):
        """
        Tell the other members of C{room}, here and elsewhere, that C{user}
        came or went; fire with L{FAILED} if some daemon may have missed it.
        """
        return self._watch(self._to_room(room, Envelope(
            type=kind,
            fromUser=SYSTEM,
            room=room,
            payload={"room": room, "userId": user},
            createTime=self._now(),
        )), "broadcast")

    def _to_room(self, room, envelope, but=None):
        """
        Send to every member of C{room} on every daemon, except C{but}; the
        other daemons' part may fail (a Deferred).
        """
        self._fan_out([u for u in self._members.get(room, ()) if u != but], envelope)
        return self._cluster.broadcast(room, envelope)

    def _get_rooms(self, conn, envelope):
        rooms = sorted(self._rooms_of.get(conn.user_id, ()))
        self._reply(conn, "rooms_list", {"rooms": rooms})

    def _get_room_members(self, conn, envelope):
        room = envelope.room
        if not room:
            return self._refuse(conn, "invalid_message", "get_room_members needs room.")
        if room not in self._rooms_of.get(conn.user_id, ()):
            return self._refuse(conn, "not_in_room", NOT_IN_ROOM)
        d = self._store.room_members(room)
        d.addCallback(lambda members: self._reply(
            conn, "room_members", {"room": room, "members": members}, room=room
        ))
        self._watch(d, "room_members", conn)

    # Chat

    def _chat_message(self, conn, envelope):
        user = conn.user_id
        content = envelope.payload.content
        if not content:
            return self._refuse(conn, "invalid_message", "A chat message needs content.")
        if len(content) * 4 > self._max_content and len(content.encode()) > self._max_content:
            return self._refuse(
                conn, "too_large", f"A chat message has at most {self._max_content} bytes."
            )
        if len(envelope.messageId) > MAX_MESSAGE_ID:
            return self._refuse(
                conn, "invalid_message", f"messageId is longer than {MAX_MESSAGE_ID}."
            )
        if envelope.toUser:
            if not valid_user_id(envelope.toUser) or envelope.toUser == user:
                return self._refuse(conn, "invalid_message", "toUser is not a user id.")
        elif not envelope.room:
            return self._refuse(
                conn, "invalid_message", "A chat message needs toUser or room."
            )
        elif envelope.room not in self._rooms_of.get(user, ()):
            self._log.info(
                "{user} refused: not in room {room!r}", user=user, room=envelope.room
            )
            conn.report.capture_message(
                "User attempted to send to room without membership",
                operation="unauthorized_room_send", room=envelope.room,
            )
            return self._refuse(conn, "not_in_room", NOT_IN_ROOM)

        at = self._clock.next_ns()
        message = replace(
            envelope,
            fromUser=user,
            room="" if envelope.toUser else envelope.room,
            messageId=envelope.messageId or uuid.uuid4().hex,
            createTime=format_ns(at),
        )
        if message.toUser:
            conn.report.breadcrumb("message", "Direct message sent", toUser=message.toUser)
            delivered = self._deliver(message.toUser, replace(message, incoming=True))
            self._send(conn, replace(message, incoming=False))
            saved = self._store.save_direct_message(user, message.toUser, message)
            saving = "save_direct_message"
        else:
            conn.report.breadcrumb(
                "message", "Room message broadcast", room=message.room,
                members=len(self._members[message.room]),
            )
            delivered = self._to_room(message.room, replace(message, incoming=True), but=user)
            self._send(conn, replace(message, incoming=False))
            saved = self._store.save_room_message(message.room, message, at)
            saving = "save_room_message"
        outcome = gatherResults([
            self._watch(delivered, "deliver", conn, reply=False),
            self._watch(saved, saving, conn, reply=False),
        ])
        outcome.addCallback(self._confirm, conn, message.messageId)

    def _confirm(self, outcome, conn, message_id):
        """
        After the echo: if the message may have missed somebody on another
        daemon, or its history, say so -- one C{unavailable} naming it. Its
        local recipients have it; nothing is retried, so nothing doubles.
        """
        failed = [what for what, result in zip(("delivery", "history"), outcome, strict=True)
                  if result is FAILED]
        if not failed or self._connections.get(conn.user_id) is not conn:
            return
        missed = {"delivery": "delivered to everyone", "history": "saved to history"}
        self._refuse(
            conn, "unavailable",
            f"Message {message_id} may not have been "
            f"{' or '.join(missed[what] for what in failed)}: "
            "part of the service is unavailable; try again later.",
            messageId=message_id, failed=failed,
        )

    # History

    def _get_recent_messages(self, conn, envelope):
        room, query = envelope.room, envelope.payload
        if not room:
            return self._refuse(conn, "invalid_message", "get_recent_messages needs room.")
        if room not in self._rooms_of.get(conn.user_id, ()):
            return self._refuse(conn, "not_in_room", NOT_IN_ROOM)
        if query.limit < 1:
            return self._refuse(conn, "invalid_message", "limit must be at least 1.")
        try:
            before = parse_rfc3339(query.before) if query.before else None
        except ValueError:
            return self._refuse(
                conn, "invalid_message", "before must be an RFC 3339 timestamp."
            )
        d = self._store.room_messages(room, min(query.limit, MAX_HISTORY_PAGE), before)
        d.addCallback(lambda messages: self._reply(
            conn,
            "recent_messages",
            {"messages": _as_seen_by(conn.user_id, messages), "room": room},
            room=room,
        ))
        self._watch(d, "room_messages", conn)

    def _get_direct_messages(self, conn, envelope):
        query = envelope.payload
        if not valid_user_id(query.withUser):
            return self._refuse(conn, "invalid_message", "withUser is not a user id.")
        if query.limit < 1:
            return self._refuse(conn, "invalid_message", "limit must be at least 1.")
        d = self._store.direct_messages(
            conn.user_id, query.withUser, min(query.limit, MAX_HISTORY_PAGE)
        )
        d.addCallback(lambda messages: self._reply(
            conn,
            "direct_messages",
            {"messages": _as_seen_by(conn.user_id, messages), "withUser": query.withUser},
        ))
        self._watch(d, "direct_messages", conn)

    # Calls: matchmaking and signaling

    def _available(self, conn, envelope):
        conn.report.breadcrumb("webrtc", "User marked as available")
        self._watch(self._store.offer(conn.user_id), "offer", conn, named=_named(envelope))

    def _unavailable(self, conn, envelope):
        conn.report.breadcrumb("webrtc", "User marked as unavailable")
        self._watch(self._store.withdraw(conn.user_id), "withdraw", conn,
                    named=_named(envelope))

    def _request_random_peer(self, conn, envelope):
        skipped = envelope.payload.currentPeerId
        conn.report.breadcrumb("webrtc", "Random peer requested", currentPeerId=skipped)
        d = self._store.pair(conn.user_id, skipped)
        d.addCallback(self._paired, conn, envelope.messageId)
        self._watch(d, "pair", conn, named=_named(envelope))

    def _paired(self, pairing, conn, request_id):
        """
        Answer the request (its C{assign_role} or C{no_peer_available}
        carries the request's C{messageId}, if it had one, to tell it from
        an C{assign_role} that somebody else's pairing sends) and tell a
        fresh peer.
        """
        user, match = conn.user_id, pairing.match
        if pairing.skipped is not None:
            self._hangup_for(pairing.skipped, user, "skipped")
        if self._connections.get(user) is not conn:
            if pairing.fresh:
                self._undo_pairing(user, match.peer)
            return
        if match is None:
            self._log.info("No peer available for {user}", user=user)
            conn.report.breadcrumb("webrtc", "No peer available")
            self._reply(conn, "no_peer_available", {
                "message": "No peer available at the moment. Please try again later."
            }, message_id=request_id)
            return
        if pairing.fresh:
            self._log.info("Paired {user} with {peer}", user=user, peer=match.peer)
            self._metrics.pairings.inc()
            conn.report.breadcrumb("webrtc", "Peer pairing made", peer=match.peer)
            self._assign_role(match.peer, Match(user, POLITE))
        self._reply(conn, "assign_role", _role(match), message_id=request_id)

    def _undo_pairing(self, user, peer):
        """
        The requester left while its pairing was under way: end the match
        before the peer hears of it, and put the peer back in the pool.
        """
        self._log.info("Undid pairing of departed {user} with {peer}", user=user, peer=peer)
        self._watch(self._store.hang_up(user, peer), "hang_up")
        self._watch(self._store.offer(peer), "offer")

    def _assign_role(self, user, match):
        self._notify(user, self._system("assign_role", user, _role(match)))

    def _relay(self, conn, envelope):
        """
        Pass a signaling message on to its C{toUser}, payload untouched.
        Fire with C{True} if it reached a connected user (L{FAILED} if it
        could not be handed over).
        """
        user, target = conn.user_id, envelope.toUser
        if not target:
            conn.report.capture_message(
                "WebRTC message missing toUser field", operation="webrtc_routing",
                messageType=envelope.type,
            )
            self._refuse(conn, "invalid_message", f"{envelope.type} needs toUser.")
            return succeed(False)
        if not valid_user_id(target) or target == user:
            self._refuse(conn, "invalid_message", "toUser is not a user id.")
            return succeed(False)
        d = self._deliver(target, replace(
            envelope, fromUser=user, room="", createTime=self._now()
        ))
        named = _named(envelope)
        d.addCallback(self._relayed, conn, target, named)
        return self._watch(d, "relay", conn, named=named)

    def _relayed(self, delivered, conn, target, named):
        if delivered:
            conn.report.breadcrumb("webrtc", "Signaling relayed", toUser=target)
        elif self._connections.get(conn.user_id) is conn:
            self._refuse(conn, "user_offline", f"{target} is not online.", **named)
        return delivered

    def _hangup(self, conn, envelope):
        user, peer = conn.user_id, envelope.toUser
        d = self._relay(conn, envelope)
        d.addCallback(
            lambda delivered: self._store.hang_up(user, peer) if delivered is True else False
        )
        d.addCallback(self._hung_up, user, peer)
        self._watch(d, "hang_up", conn, named=_named(envelope))

    def _hung_up(self, ended, user, peer):
        if ended:
            self._log.info("{user} hung up on {peer}", user=user, peer=peer)

    def _hangup_for(self, user, peer, reason):
        """Tell C{user}, wherever it is, that its call with C{peer} is over."""
        return self._notify(user, Envelope(
            type="hangup",
            fromUser=peer,
            toUser=user,
            payload={"reason": reason},
            createTime=self._now(),
        ))

    def _forbidden(self, conn, envelope):
        self._log.info(
            "{user} refused: clients may not send {kind}",
            user=conn.user_id, kind=envelope.type,
        )
        self._refuse(conn, "forbidden", f"Clients may not send {envelope.type}.")

    # Sending

    def _now(self):
        return format_ns(self._clock.next_ns())

    def _send(self, conn, envelope):
        self._metrics.sent.labels(envelope.type).inc()
        conn.send(self._prepare(envelope))

    def _fan_out(self, users, envelope):
        """
        Send one message to many users, prepared once for all of them --
        except the server's own (presence), which name each recipient in
        C{toUser} as PROTOCOL.md section 2 has it.
        """
        if not users:
            return
        self._metrics.sent.labels(envelope.type).inc(len(users))
        if envelope.fromUser == SYSTEM:
            for user in users:
                self._connections[user].send(self._prepare(replace(envelope, toUser=user)))
            return
        prepared = self._prepare(envelope)
        for user in users:
            self._connections[user].send(prepared)

    def _deliver(self, user, envelope):
        """
        Send to C{user}, here or on another daemon; fire with whether it is
        connected anywhere.
        """
        conn = self._connections.get(user)
        if conn is not None:
            self._send(conn, envelope)
            return succeed(True)
        return self._cluster.deliver(user, envelope)

    def _notify(self, user, envelope):
        """Deliver where no client waits for the outcome (L{FAILED} if it failed)."""
        return self._watch(self._deliver(user, envelope), "deliver")

    def _system(self, kind, to_user, payload, room="", message_id=""):
        """A message the server originates."""
        return Envelope(
            type=kind,
            fromUser=SYSTEM,
            toUser=to_user,
            room=room,
            payload=payload,
            messageId=message_id,
            createTime=self._now(),
        )

    def _reply(self, conn, kind, payload, room="", message_id=""):
        self._send(conn, self._system(kind, conn.user_id, payload, room, message_id))

    def _refuse(self, conn, code, text, **details):
        self._metrics.errors.labels(code).inc()
        self._reply(conn, "error", {"error": text, "code": code, **details})

    def _watch(self, d, operation, conn=None, reply=True, named=None):
        """
        The one place store work is accounted for: timed (a metric, and a
        span of the message's trace), and its failure logged and reported --
        in C{conn}'s scope when there is one; an outage is reported by the
        store, once for all. C{conn}, unless told not to C{reply}, is told
        the service is unavailable (with the C{named} details: the message
        it was about). Returns C{d}, which then fires with L{FAILED} instead
        of failing.
        """
        self._metrics.time_store(operation, d)
        if self._trace is not None:
            self._trace.span(operation, d)

        def failed(failure):
            if not failure.check(StoreUnavailable):
                report = conn.report if conn is not None else self._reporter.daemon
                report.failed(
                    self._log, failure, f"Store operation {operation} failed",
                    operation=f"{self._store.kind}_{operation}", component="store",
                )
            if reply and conn is not None and self._connections.get(conn.user_id) is conn:
                self._refuse(
                    conn, "unavailable", "That is unavailable right now; try again later.",
                    **(named or {}),
                )
            return FAILED

        return d.addErrback(failed)

    # From the other daemons (IReceiver)

    def sessions(self):
        return {user: sorted(self._rooms_of.get(user, ())) for user in self._connections}

    def deliver_local(self, user, envelope):
        conn = self._connections.get(user)
        if conn is not None:
            self._send(conn, envelope)

    def broadcast_local(self, room, envelope):
        self._fan_out(self._members.get(room, ()), envelope)

    def replaced_elsewhere(self, user):
        conn = self._connections.get(user)
        if conn is not None:
            self._log.info("{user} replaced by a connection to another daemon", user=user)
            self._detach(conn, announce=False)
            conn.close(CLOSE_REPLACED, "replaced")

    def reaped(self, user, rooms, peer):
        for room in rooms:
            self._announce(room, "user_left", user)
        if peer is not None:
            self._hangup_for(peer, user, "disconnected")

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
            conn.close(CLOSE_GOING_AWAY, SHUTTING_DOWN)
        released = _all_done([self._detach(conn) for conn in conns])
        released.addCallback(self._leave)
        closed = list(self._closing.values())
        return gatherResults([released, *closed], consumeErrors=True)

    def _leave(self, released):
        if released is not FAILED:
            return self._cluster.leave()
        self._log.warn(
            "Not every session could be released at shutdown; the other "
            "daemons will clean up the rest when this one's heartbeat lapses"
        )
        return None


FAILED = object()
"""What a watched Deferred fires with when its work failed (and was dealt with)."""


def _all_done(deferreds):
    """Fire with L{FAILED} if any of the (watched) C{deferreds} did, else C{None}."""
    d = gatherResults(deferreds, consumeErrors=True)
    return d.addCallback(lambda results: FAILED if FAILED in results else None)


_ROOM_RULE = "A room name is 1-100 characters, without control characters."


def _role(match):
    return {"role": match.role, "peerId": match.peer}


def _named(envelope):
    """The details that tie an error to the client's message, if it named it."""
    return {"messageId": envelope.messageId} if envelope.messageId else {}


def _as_seen_by(user, messages):
    """History entries, each marked C{incoming} unless C{user} sent it."""
    return [replace(m, incoming=m.fromUser != user) for m in messages]

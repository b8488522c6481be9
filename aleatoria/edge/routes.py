"""
The wire's message types: what each one a client sends asks of the hub,
and what goes back -- the reply's type, or an C{error} with its code.

A route takes the hub, the connection and the decoded L{Envelope}, calls
one of the hub's domains with plain values, and returns the L{Answer}
(or a Deferred of it; C{None} when the type has no reply). A L{Refused},
raised or failed with, becomes an C{error} whose code says which kind.
"""

from typing import Any, NamedTuple

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from aleatoria.domain.calls import role
from aleatoria.domain.limits import PerAddress, TooMany
from aleatoria.domain.ports import (
    Busy,
    Forbidden,
    Invalid,
    NotInRoom,
    Offline,
    QuotaExceeded,
    Refused,
    TooLarge,
    Unavailable,
)

CODES = {
    Busy: "busy",
    QuotaExceeded: "quota_exceeded",
    Invalid: "invalid_message",
    TooLarge: "too_large",
    NotInRoom: "not_in_room",
    Forbidden: "forbidden",
    Offline: "user_offline",
    Unavailable: "unavailable",
}
"""The C{code} of each kind of refusal (docs/protocol.rst, Errors)."""


NO_PEER = "No peer available at the moment. Please try again later."


class Answer(NamedTuple):
    """A reply of the server's own to the client that asked."""

    type: str
    payload: Any
    room: str = ""
    message_id: str = ""


def chat_message(hub, conn, m):
    return hub.chat.post(conn, m.payload.content, to_user=m.toUser, room=m.room,
                         message_id=m.messageId)


def join_room(hub, conn, m):
    hub.rooms.join(conn, m.room)
    return Answer("room_joined", {"room": m.room, "action": "joined"}, m.room)


def leave_room(hub, conn, m):
    hub.rooms.leave(conn, m.room)
    return Answer("room_left", {"room": m.room, "action": "left"}, m.room)


def get_rooms(hub, conn, m):
    return Answer("rooms_list", {"rooms": sorted(hub.rooms.rooms_of(conn.user_id))})


def get_room_members(hub, conn, m):
    d = hub.rooms.members(conn, m.room, m.payload.limit, m.payload.after)
    return d.addCallback(_members_page, m.room)


def _members_page(page, room):
    members, count, following = page
    payload = {"room": room, "members": members, "count": count}
    if following is not None:
        payload["next"] = following
    return Answer("room_members", payload, room)


def get_recent_messages(hub, conn, m):
    d = hub.rooms.history(conn, m.room, m.payload.limit, m.payload.before)
    return d.addCallback(
        lambda messages: Answer("recent_messages", {"messages": messages, "room": m.room},
                                m.room))


def get_direct_messages(hub, conn, m):
    with_user = m.payload.withUser
    d = hub.direct.history(conn, with_user, m.payload.limit)
    return d.addCallback(
        lambda messages: Answer("direct_messages", {"messages": messages, "withUser": with_user}))


def resume(hub, conn, m):
    """The answer repeats the request's C{messageId}."""
    d = Deferred.fromCoroutine(hub.resumer.resume(conn, m.payload.rooms, m.payload.direct))
    return d.addCallback(lambda outcome: Answer("resumed", _resumed(*outcome),
                                                message_id=m.messageId))


def _resumed(rooms, direct):
    payload = {"rooms": {room: _stream(outcome) for room, outcome in rooms.items()}}
    if direct is not None:
        payload["direct"] = _stream(direct)
    return payload


def _stream(outcome):
    if isinstance(outcome, Refused):
        return {"recovered": False, "error": outcome.sentence, "code": CODES[type(outcome)]}
    return {"recovered": outcome.recovered, "offset": outcome.offset, "epoch": outcome.epoch}


def get_conversations(hub, conn, m):
    limit = m.payload.limit
    d = hub.direct.conversations(conn, limit, m.payload.before)
    return d.addCallback(_conversations, limit)


def _conversations(found, limit):
    payload = {"conversations": [{"withUser": with_user, "last": last, "unread": unread}
                                 for with_user, last, unread in found]}
    if found and len(found) == limit:
        payload["next"] = found[-1][1].offset
    return Answer("conversations", payload)


def mark_read(hub, conn, m):
    with_user, offset = m.payload.withUser, m.payload.offset
    d = hub.direct.mark_read(conn, with_user, offset)
    return d.addCallback(lambda unread: Answer(
        "marked_read", {"withUser": with_user, "offset": offset, "unread": unread}))


def user_available_webrtc(hub, conn, m):
    return hub.calls.available(conn)


def user_unavailable_webrtc(hub, conn, m):
    return hub.calls.unavailable(conn)


def request_random_peer(hub, conn, m):
    """
    The answer repeats the request's C{messageId}, to tell it from an
    C{assign_role} that somebody else's pairing sends.
    """
    d = hub.calls.request_peer(conn, m.payload.currentPeerId)
    return d.addCallback(lambda match: (
        Answer("no_peer_available", {"message": NO_PEER}, message_id=m.messageId)
        if match is None else Answer("assign_role", role(match), message_id=m.messageId)
    ))


def signal(hub, conn, m):
    return hub.calls.relay(conn, m.type, m.toUser, m.payload, m.messageId)


def hangup(hub, conn, m):
    return hub.calls.hangup(conn, m.toUser, m.payload, m.messageId)


def server_only(hub, conn, m):
    raise Forbidden(f"Clients may not send {m.type}.")


ROUTES = {
    "chat_message": chat_message,
    "join_room": join_room,
    "leave_room": leave_room,
    "get_rooms": get_rooms,
    "get_room_members": get_room_members,
    "get_recent_messages": get_recent_messages,
    "get_direct_messages": get_direct_messages,
    "resume": resume,
    "get_conversations": get_conversations,
    "mark_read": mark_read,
    "user_available_webrtc": user_available_webrtc,
    "user_unavailable_webrtc": user_unavailable_webrtc,
    "request_random_peer": request_random_peer,
    "webrtc_offer": signal,
    "webrtc_answer": signal,
    "webrtc_candidate": signal,
    "hangup": hangup,
    "assign_role": server_only,
}


READS = frozenset({"get_recent_messages", "get_room_members", "get_direct_messages",
                   "get_conversations", "mark_read", "resume"})
"""The types whose answer waits for the store: how many may be under way is bounded."""

READ_RETRY_MS = 1000
"""The C{retryAfter} of a read refused as one too many under way: about what one takes at worst."""


class Reads:
    """
    Store reads under way, per user and per client address, each up to
    its maximum: a client that asks faster than the store answers waits
    for its answers, instead of piling work on the store.
    """

    def __init__(self, per_user, per_address):
        self._users = PerAddress(per_user)
        self._addresses = PerAddress(per_address)

    def start(self, conn):
        """One more read of C{conn}'s; whether it may be."""
        try:
            self._users.count_in(conn.user_id)
        except TooMany:
            return False
        try:
            self._addresses.count_in(conn.peer)
        except TooMany:
            self._users.count_out(conn.user_id)
            return False
        return True

    def done(self, conn):
        self._users.count_out(conn.user_id)
        self._addresses.count_out(conn.peer)


class Router:
    """
    Hands each decoded client message to its route, traced as one
    transaction, and sends what comes back. A bug in a route is reported
    and answered C{unavailable}; the connection and the daemon go on.

    @param hub: the L{aleatoria.hub.Hub}.
    @param reporter: the L{aleatoria.reporting.Reporter}.
    @param metrics: the L{aleatoria.metrics.Metrics}.
    @param reads: the L{Reads} under way, bounded (by default 8 per user,
        64 per address).
    """

    _log = Logger()

    def __init__(self, hub, reporter, metrics, reads=None):
        self._hub = hub
        self._reporter = reporter
        self._metrics = metrics
        self._reads = reads or Reads(8, 64)

    def received(self, conn, envelope):
        hub, kind = self._hub, envelope.type
        if not hub.current(conn):
            return
        route = ROUTES.get(kind)
        if route is None:
            self._metrics.received.labels("unknown").inc()
            conn.report.fault("Unknown message type", "unknown_message_type",
                              messageType=kind[:64])
            self._error(conn, "unknown_type", f"Unknown message type {kind!r}.")
            return
        self._metrics.received.labels(kind).inc()
        reading = kind in READS
        if reading and not self._reads.start(conn):
            self._too_many_reads(conn, envelope)
            return
        trace = self._reporter.trace(conn.report, kind)
        hub.tracing(trace)
        try:
            answer = route(hub, conn, envelope)
        except Exception:
            answer = None
            self._failed(Failure(), conn, envelope)
        else:
            if isinstance(answer, Deferred):
                answer.addCallbacks(self._answer, self._failed, (conn, envelope), None,
                                    (conn, envelope))
            else:
                self._answer(answer, conn, envelope)
        finally:
            hub.tracing(None)
            trace.handled()
        if reading:
            if isinstance(answer, Deferred):
                answer.addBoth(self._read_done, conn)
            else:
                self._reads.done(conn)

    def _read_done(self, result, conn):
        self._reads.done(conn)
        return result

    def _too_many_reads(self, conn, envelope):
        details = {"retryAfter": READ_RETRY_MS}
        if envelope.messageId:
            details["messageId"] = envelope.messageId
        self._error(conn, "rate_limited", "Too many requests under way; wait for their "
                    "answers.", details)

    def _answer(self, answer, conn, envelope):
        if isinstance(answer, Answer) and self._hub.current(conn):
            if envelope.messageId and not answer.message_id:
                answer = answer._replace(message_id=envelope.messageId)
            try:
                self._hub.reply(conn, *answer)
            except Exception:
                self._failed(Failure(), conn, envelope)

    def _failed(self, failure, conn, envelope):
        refused = failure.value
        if not isinstance(refused, Refused):
            conn.report.failed(
                self._log, failure, f"Handling {envelope.type} failed",
                component="hub", operation="handle_message", messageType=envelope.type,
            )
            refused = Unavailable("The server could not handle that message.")
        if isinstance(refused, Forbidden):
            conn.report.fault(None, "forbidden", log=self._log, line="{user} refused: {why}",
                              fields={"user": conn.user_id, "why": refused.sentence})
        details = refused.details
        if envelope.messageId:
            details = {"messageId": envelope.messageId, **details}
        self._error(conn, CODES[type(refused)], refused.sentence, details)

    def _error(self, conn, code, sentence, details=None):
        if not self._hub.current(conn):
            return
        self._metrics.errors.labels(code).inc()
        self._hub.reply(conn, "error", {"error": sentence, "code": code, **(details or {})})

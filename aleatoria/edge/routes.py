"""
The wire's message types: what each one a client sends asks of the
domain, and what goes back -- the reply's type, or an C{error} with its
code.

A route takes the hub, the connection and the decoded L{Envelope}, calls
one of the hub's domains with plain values, and returns the L{Answer}
(or a Deferred of it; C{None} when the type has no reply). A L{Refused},
raised or failed with, becomes an C{error} whose code says which kind.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn

from msgspec import UNSET, Raw
from twisted.internet.defer import Deferred

from aleatoria.domain.events import NO_PAYLOAD
from aleatoria.domain.refusals import (
    Busy,
    Forbidden,
    Invalid,
    NotInRoom,
    Offline,
    QuotaExceeded,
    RateLimited,
    Refused,
    TooLarge,
    Unavailable,
)
from aleatoria.edge.render import SIGNAL_KINDS, envelope, role

if TYPE_CHECKING:
    from aleatoria.domain.events import Push
    from aleatoria.domain.hub import Hub
    from aleatoria.domain.ports import IConnection
    from aleatoria.domain.resume import Resumed
    from aleatoria.domain.values import Conversation, MembersPage
    from aleatoria.edge.wire import Envelope

CODES: dict[type[Refused], str] = {
    Busy: "busy",
    QuotaExceeded: "quota_exceeded",
    Invalid: "invalid_message",
    TooLarge: "too_large",
    NotInRoom: "not_in_room",
    Forbidden: "forbidden",
    Offline: "user_offline",
    Unavailable: "unavailable",
    RateLimited: "rate_limited",
}
"""The C{code} of each kind of refusal (docs/protocol.rst, Errors)."""

NO_PEER = "No peer available at the moment. Please try again later."


class Answer(NamedTuple):
    """A reply of the server's own to the client that asked."""

    type: str
    payload: Any
    room: str = ""
    message_id: str = ""


Route = Callable[
    ["Hub", "IConnection", "Envelope"], "Answer | Deferred[Answer] | Deferred[None] | None"]
"""
What a route is: it takes the hub, the connection and the envelope, and
answers (or not) -- at once, or when its Deferred fires.
"""


def chat_message(hub: Hub, conn: IConnection, m: Envelope) -> Deferred[None]:
    return hub.chat.post(conn, m.payload.content, to_user=m.toUser, room=m.room,
                         message_id=m.messageId)


def call_message(hub: Hub, conn: IConnection, m: Envelope) -> Deferred[None]:
    return hub.call_chat.send(conn, m.toUser, m.payload.content, m.messageId)


def join_room(hub: Hub, conn: IConnection, m: Envelope) -> Answer:
    hub.rooms.join(conn, m.room)
    return Answer("room_joined", {"room": m.room, "action": "joined"}, m.room)


def leave_room(hub: Hub, conn: IConnection, m: Envelope) -> Answer:
    hub.rooms.leave(conn, m.room)
    return Answer("room_left", {"room": m.room, "action": "left"}, m.room)


def get_rooms(hub: Hub, conn: IConnection, m: Envelope) -> Answer:
    return Answer("rooms_list", {"rooms": sorted(hub.rooms.rooms_of(conn.user_id))})


def get_room_members(hub: Hub, conn: IConnection, m: Envelope) -> Deferred[Answer]:
    d = hub.rooms.members(conn, m.room, m.payload.limit, m.payload.after)
    return d.addCallback(_members_page, m.room)


def _members_page(page: MembersPage, room: str) -> Answer:
    members, count, following = page
    payload: dict[str, object] = {"room": room, "members": members, "count": count}
    if following is not None:
        payload["next"] = following
    return Answer("room_members", payload, room)


def get_recent_messages(hub: Hub, conn: IConnection, m: Envelope) -> Deferred[Answer]:
    d = hub.rooms.history(conn, m.room, m.payload.limit, m.payload.before)
    return d.addCallback(lambda messages: Answer(
        "recent_messages", {"messages": _as_seen(messages, conn), "room": m.room}, m.room))


def get_direct_messages(hub: Hub, conn: IConnection, m: Envelope) -> Deferred[Answer]:
    with_user = m.payload.withUser
    d = hub.direct.history(conn, with_user, m.payload.limit)
    return d.addCallback(lambda messages: Answer(
        "direct_messages", {"messages": _as_seen(messages, conn), "withUser": with_user}))


def _as_seen(messages: Iterable[Push], conn: IConnection) -> list[Envelope]:
    return [envelope(message, conn.user_id) for message in messages]


def resume(hub: Hub, conn: IConnection, m: Envelope) -> Deferred[Answer]:
    """The answer repeats the request's C{messageId}."""
    d = Deferred.fromCoroutine(hub.resumer.resume(conn, m.payload.rooms, m.payload.direct))
    return d.addCallback(lambda outcome: Answer("resumed", _resumed(*outcome),
                                                message_id=m.messageId))


def _resumed(rooms: dict[str, Resumed | Refused], direct: Resumed | None) -> dict[str, object]:
    payload: dict[str, object] = {
        "rooms": {room: _stream(outcome) for room, outcome in rooms.items()}}
    if direct is not None:
        payload["direct"] = _stream(direct)
    return payload


def _stream(outcome: Resumed | Refused) -> dict[str, object]:
    if isinstance(outcome, Refused):
        return {"recovered": False, "error": outcome.sentence, "code": CODES[type(outcome)]}
    return {"recovered": outcome.recovered, "offset": outcome.offset, "epoch": outcome.epoch}


def get_conversations(hub: Hub, conn: IConnection, m: Envelope) -> Deferred[Answer]:
    limit = m.payload.limit
    d = hub.direct.conversations(conn, limit, m.payload.before)
    return d.addCallback(_conversations, limit, conn)


def _conversations(found: list[Conversation], limit: int, conn: IConnection) -> Answer:
    payload: dict[str, object] = {"conversations": [
        {"withUser": c.with_user, "last": envelope(c.last, conn.user_id), "unread": c.unread}
        for c in found]}
    if found and len(found) == limit:
        payload["next"] = found[-1].last.offset
    return Answer("conversations", payload)


def mark_read(hub: Hub, conn: IConnection, m: Envelope) -> Deferred[Answer]:
    with_user, offset = m.payload.withUser, m.payload.offset
    d = hub.direct.mark_read(conn, with_user, offset)
    return d.addCallback(lambda unread: Answer(
        "marked_read", {"withUser": with_user, "offset": offset, "unread": unread}))


def user_available_webrtc(hub: Hub, conn: IConnection, m: Envelope) -> Deferred[None]:
    interests = m.payload.interests if m.payload else ()
    return hub.calls.in_turn(conn, hub.calls.available, interests)


def user_unavailable_webrtc(hub: Hub, conn: IConnection, m: Envelope) -> Deferred[None]:
    return hub.calls.in_turn(conn, hub.calls.unavailable)


def request_random_peer(hub: Hub, conn: IConnection, m: Envelope) -> Deferred[Answer]:
    """
    The answer repeats the request's C{messageId}, to tell it from an
    C{assign_role} that somebody else's pairing sends.
    """
    p = m.payload
    d = hub.calls.in_turn(conn, hub.calls.request_peer, p.currentPeerId, p.interests,
                          p.interestsOnly)
    return d.addCallback(lambda match: (
        Answer("no_peer_available", {"message": NO_PEER}, message_id=m.messageId)
        if match is None
        else Answer("assign_role", role(match.role, match.peer, match.common),
                    message_id=m.messageId)
    ))


def get_ice_servers(hub: Hub, conn: IConnection, m: Envelope) -> Answer:
    """The outlet mints the payload (L{aleatoria.edge.render.Outlet.reply})."""
    return Answer("ice_servers", {}, message_id=m.messageId)


def _payload(m: Envelope) -> Raw:
    return NO_PAYLOAD if m.payload is UNSET else m.payload


def signal(hub: Hub, conn: IConnection, m: Envelope) -> Deferred[None] | None:
    return hub.calls.relay(conn, SIGNAL_KINDS[m.type], m.toUser, _payload(m), m.messageId)


def hangup(hub: Hub, conn: IConnection, m: Envelope) -> Deferred[None]:
    return hub.calls.in_turn(conn, hub.calls.hangup, m.toUser, _payload(m), m.messageId)


def block_user(hub: Hub, conn: IConnection, m: Envelope) -> Deferred[Answer]:
    user = m.payload.userId
    d = hub.safety.block(conn, user)
    return d.addCallback(lambda _: Answer("user_blocked", {"userId": user}))


def unblock_user(hub: Hub, conn: IConnection, m: Envelope) -> Deferred[Answer]:
    user = m.payload.userId
    d = hub.safety.unblock(conn, user)
    return d.addCallback(lambda _: Answer("user_unblocked", {"userId": user}))


def get_blocked(hub: Hub, conn: IConnection, m: Envelope) -> Deferred[Answer]:
    d = hub.safety.blocked(conn)
    return d.addCallback(lambda users: Answer("blocked_users", {"users": users}))


def report_user(hub: Hub, conn: IConnection, m: Envelope) -> Deferred[Answer]:
    p = m.payload
    d = hub.reported.report(conn, p.userId, p.reason, p.details)
    return d.addCallback(lambda report_id: Answer(
        "user_reported", {"userId": p.userId, "reportId": report_id}))


def server_only(hub: Hub, conn: IConnection, m: Envelope) -> NoReturn:
    raise Forbidden(f"Clients may not send {m.type}.")


ROUTES: dict[str, Route] = {
    "chat_message": chat_message,
    "call_message": call_message,
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
    "get_ice_servers": get_ice_servers,
    "assign_role": server_only,
    "block_user": block_user,
    "unblock_user": unblock_user,
    "get_blocked": get_blocked,
    "report_user": report_user,
}

READS = frozenset({"get_recent_messages", "get_room_members", "get_direct_messages",
                   "get_conversations", "mark_read", "resume", "get_blocked"})
"""The types whose answer waits for the store: how many may be under way is bounded."""

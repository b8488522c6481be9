"""
The one renderer of the wire: every push of the domain and every reply
becomes an L{Envelope} here (docs/protocol.rst), encoded and framed once
per view -- the sender's echo and everybody else's copy of a chat
message; each recipient's own copy of what the server originates, whose
C{toUser} names it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, cast

from msgspec import UNSET
from zope.interface import implementer

from aleatoria.domain.clock import format_ns
from aleatoria.domain.events import (
    NO_PAYLOAD,
    CallEnded,
    CallMessage,
    CallStarted,
    DirectMessage,
    MemberJoined,
    MemberLeft,
    PeerReconnected,
    PostFailed,
    RoomMessage,
    Signal,
)
from aleatoria.domain.ports import IOutlet
from aleatoria.domain.rules import SYSTEM
from aleatoria.edge.ice import IceServers
from aleatoria.edge.wire import ChatPayload, Envelope

if TYPE_CHECKING:
    from autobahn.websocket.protocol import PreparedMessage

    from aleatoria.domain.clock import MessageClock
    from aleatoria.domain.events import Push
    from aleatoria.domain.ports import IConnection
    from aleatoria.ops.metrics import Metrics

WIRE_SIGNALS = {"offer": "webrtc_offer", "answer": "webrtc_answer",
                "candidate": "webrtc_candidate", "hangup": "hangup"}
"""Each kind of signaling the domain relays, by the type the wire gives it."""
SIGNAL_KINDS = {wire: kind for kind, wire in WIRE_SIGNALS.items()}


class Recipient(Protocol):
    """
    A connection as the outlet writes to it (an
    L{aleatoria.edge.protocol.ClientProtocol}): the hub's connections are
    this edge's.
    """

    @property
    def user_id(self) -> str: ...

    def write(self, frame: PreparedMessage) -> None: ...


def _room(push: RoomMessage, user: str) -> Envelope:
    return Envelope(type="chat_message", fromUser=push.sender,
                    toUser=user if push.sender == SYSTEM else "", room=push.room,
                    payload=ChatPayload(push.content), messageId=push.message_id,
                    createTime=push.create_time, incoming=push.sender != user,
                    offset=push.offset, epoch=push.epoch)


def _direct(push: DirectMessage, user: str) -> Envelope:
    return Envelope(type="chat_message", fromUser=push.sender, toUser=push.recipient,
                    payload=ChatPayload(push.content), messageId=push.message_id,
                    createTime=push.create_time, incoming=push.sender != user,
                    offset=push.offset, epoch=push.epoch)


def _call_message(push: CallMessage, user: str) -> Envelope:
    return Envelope(type="call_message", fromUser=push.sender, toUser=push.recipient,
                    payload=ChatPayload(push.content), messageId=push.message_id,
                    createTime=push.create_time, incoming=push.sender != user)


def _presence(kind: str) -> Callable[[MemberJoined | MemberLeft, str], Envelope]:
    def render(push: MemberJoined | MemberLeft, user: str) -> Envelope:
        return Envelope(type=kind, fromUser=SYSTEM, toUser=user, room=push.room,
                        payload={"room": push.room, "userId": push.user},
                        createTime=push.create_time)

    return render


def _call_started(push: CallStarted, user: str) -> Envelope:
    payload = role(push.role, push.peer, push.common)
    if push.resumed:
        payload["resumed"] = True
    return Envelope(type="assign_role", fromUser=SYSTEM, toUser=user,
                    payload=payload, createTime=push.create_time)


def _peer_reconnected(push: PeerReconnected, user: str) -> Envelope:
    return Envelope(type="peer_reconnected", fromUser=SYSTEM, toUser=user,
                    payload={"peerId": push.peer}, createTime=push.create_time)


def _call_ended(push: CallEnded, user: str) -> Envelope:
    return Envelope(type="hangup", fromUser=push.peer, toUser=user,
                    payload={"reason": push.reason}, createTime=push.create_time)


def _signal(push: Signal, user: str) -> Envelope:
    return Envelope(type=WIRE_SIGNALS[push.kind], fromUser=push.sender, toUser=push.recipient,
                    payload=UNSET if push.payload == NO_PAYLOAD else push.payload,
                    messageId=push.message_id, createTime=push.create_time)


# each renders pushes of its own kind
_RENDER: dict[type[Push], Callable[[Any, str], Envelope]] = {
    RoomMessage: _room,
    DirectMessage: _direct,
    MemberJoined: _presence("user_joined"),
    MemberLeft: _presence("user_left"),
    CallStarted: _call_started,
    CallEnded: _call_ended,
    Signal: _signal,
    CallMessage: _call_message,
    PeerReconnected: _peer_reconnected,
}


_MINTED = frozenset({"ice_servers", "assign_role"})
"""The replies L{Outlet._minted} adds to."""


def envelope(push: Push, user: str) -> Envelope:
    """C{push} as C{user} is sent it."""
    return _RENDER[type(push)](push, user)


def role(role: str, peer: str, common: Iterable[str] = ()) -> dict[str, object]:
    """The payload of C{assign_role}."""
    return {"role": role, "peerId": peer, "commonInterests": list(common)}


@implementer(IOutlet)
class Outlet:
    """
    Renders pushes and replies, and writes them to connections (each
    provides C{write(frame)}).

    @param prepare: encodes and frames an L{Envelope} (or, in tests, keeps it).
    @param clock: the L{aleatoria.domain.clock.MessageClock} of the
        daemon, for the createTime of replies.
    @param metrics: the L{aleatoria.ops.metrics.Metrics} (messages sent,
        errors answered).
    @param ice: the L{IceServers} whose fresh credentials C{ice_servers}
        and every C{assign_role} carry (default: none).
    """

    def __init__(self, prepare: Callable[[Envelope], PreparedMessage], clock: MessageClock,
                 metrics: Metrics, ice: IceServers | None = None) -> None:
        self._prepare = prepare
        self._clock = clock
        self._metrics = metrics
        self._ice = ice or IceServers()

    def send(self, connections: Collection[IConnection], push: Push) -> None:
        kind = type(push)
        # push is of type kind, which mypy does not see; the connections are this edge's
        if kind is PostFailed:
            for conn in cast("Collection[Recipient]", connections):
                self.error(conn, "unavailable", push.sentence,  # type: ignore[attr-defined]
                           {"messageId": push.message_id,  # type: ignore[attr-defined]
                            "failed": push.failed})  # type: ignore[attr-defined]
            return
        # push is a RoomMessage
        if kind is RoomMessage and push.sender != SYSTEM:  # type: ignore[attr-defined]
            self._chat(connections, push)  # type: ignore[arg-type]  # as above
            return
        render, prepare = _RENDER[kind], self._prepare
        wire = None
        for conn in cast("Collection[Recipient]", connections):
            message = render(push, conn.user_id)
            wire = message.type
            if kind is CallStarted:
                message.payload.update(self._minted(wire))
            conn.write(prepare(message))
        if wire is not None:
            self._metrics.sent.labels(wire).inc(len(connections))

    def _chat(self, connections: Collection[Recipient], push: RoomMessage) -> None:
        """Room chat: one frame for the members, one for the sender's echo."""
        sender, members, echo = push.sender, None, None
        for conn in connections:
            if conn.user_id == sender:
                echo = echo or self._prepare(_room(push, sender))
                conn.write(echo)
            else:
                members = members or self._prepare(_room(push, ""))
                conn.write(members)
        self._metrics.sent.labels("chat_message").inc(len(connections))

    def reply(self, conn: Recipient, kind: str, payload: Mapping[str, object] | None,
              room: str = "", message_id: str = "") -> None:
        """A message of the server's own to C{conn}, stamped now."""
        self._metrics.sent.labels(kind).inc()
        if kind in _MINTED:
            payload = {**(payload or {}), **self._minted(kind)}
        conn.write(self._prepare(Envelope(
            type=kind, fromUser=SYSTEM, toUser=conn.user_id, room=room, payload=payload,
            messageId=message_id, createTime=format_ns(self._clock.next_ns()))))

    def _minted(self, kind: str) -> dict[str, object]:
        """
        What a message of type C{kind} gets minted as it is written: the ICE
        servers, credentials fresh for each call a client starts (coturn
        checks them only when a relay is allocated).
        """
        if kind == "ice_servers":
            return self._ice.fresh()
        return {"iceServers": self._ice.fresh()["iceServers"]}

    def malformed(self, conn: Recipient, details: str) -> None:
        """The compat C{error_response} to a frame that is no envelope (messageId C{err-<time>})."""
        self._metrics.errors.labels("error_response").inc()
        self._metrics.sent.labels("error_response").inc()
        now = format_ns(self._clock.next_ns())
        conn.write(self._prepare(Envelope(
            type="error_response", fromUser=SYSTEM, toUser=conn.user_id,
            payload={"error": "Invalid message structure", "details": details},
            messageId=f"err-{now}", createTime=now)))

    def error(self, conn: Recipient, code: str, sentence: str,
              details: Mapping[str, object] | None = None) -> None:
        """An C{error} with its C{code}, counted among the errors answered."""
        self._metrics.errors.labels(code).inc()
        self.reply(conn, "error", {"error": sentence, "code": code, **(details or {})})

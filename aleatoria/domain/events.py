"""
What happens in the domain, as typed values.

Two families. A L{Push} is sent to users: the edge renders it into a frame
(L{aleatoria.edge.render}), and daemons hand pushes to each other over the
bus (L{aleatoria.domain.ports.IBus}) as a versioned tagged union --
never rendered frames. A L{Fact} is what observers hear, once, on the
daemon where it happened: log lines, breadcrumbs, counters, webhooks.
"""

import msgspec
from msgspec import Raw

BUS_VERSION = 1
"""The version of the pushes daemons exchange: a daemon drops what it cannot read."""


class Push(msgspec.Struct, frozen=True, tag=True, tag_field="e", omit_defaults=True):
    """Something users are sent, here or on another daemon."""


class RoomMessage(Push, tag="room"):
    """Chat in a room; numbered (C{offset}, C{epoch}) once its stream kept it."""

    room: str
    sender: str
    content: str
    message_id: str
    create_time: str
    offset: int = 0
    epoch: str = ""


class DirectMessage(Push, tag="direct"):
    """
    A message from one user to another; numbered as the inbox of the party
    it is for numbers it (the recipient's, or the sender's own echo).
    """

    sender: str
    recipient: str
    content: str
    message_id: str
    create_time: str
    offset: int = 0
    epoch: str = ""


class MemberJoined(Push, tag="joined"):
    room: str
    user: str
    create_time: str


class MemberLeft(Push, tag="left"):
    room: str
    user: str
    create_time: str


class CallStarted(Push, tag="call"):
    """C{user} is matched with C{peer}, in C{role} (again if C{resumed}, back in its grace)."""

    user: str
    peer: str
    role: str
    create_time: str
    common: tuple = ()
    """The interests the two share."""
    resumed: bool = False


class PeerReconnected(Push, tag="back"):
    """C{user}'s partner C{peer} came back within the grace of their call."""

    user: str
    peer: str
    create_time: str


class CallEnded(Push, tag="ended"):
    """C{user}'s call with C{peer} is over, for C{reason}."""

    user: str
    peer: str
    reason: str
    create_time: str


NO_PAYLOAD = Raw(b"null")
"""The payload of signaling a client sent without one."""


class Signal(Push, tag="signal"):
    """
    WebRTC signaling relayed untouched: C{kind} is C{offer}, C{answer},
    C{candidate} or C{hangup}; C{payload} the client's JSON (L{NO_PAYLOAD}
    when it sent none).
    """

    kind: str
    sender: str
    recipient: str
    payload: Raw
    message_id: str
    create_time: str


class CallMessage(Push, tag="callchat"):
    """Chat between the two users of a call, relayed and kept nowhere."""

    sender: str
    recipient: str
    content: str
    message_id: str
    create_time: str


class Replaced(Push, tag="replaced"):
    """C{user} connected to another daemon: its connection here closes."""

    user: str


class Kicked(Push, tag="kicked"):
    """The server API cut C{user} off, giving C{reason}."""

    user: str
    reason: str


class PostFailed(Push, tag="failed"):
    """
    Part of what a chat message needed failed (C{failed}: C{delivery},
    C{history}): its sender hears so -- before its echo. Local only.
    """

    user: str
    message_id: str
    failed: list[str]
    sentence: str


class Ban(Push, tag="ban"):
    """
    A ban of C{user}, or of the addresses in C{network}, from C{created_at}
    to C{expires_at} (Unix seconds), for C{reason}; daemons hand each other
    those set, for their copies (L{aleatoria.domain.bans}).
    """

    id: str
    created_at: float
    expires_at: float
    user: str = ""
    network: str = ""
    reason: str = ""


class BanLifted(Push, tag="unban"):
    """The ban C{id} was lifted before its end."""

    id: str


BUS_PUSHES = (RoomMessage | DirectMessage | MemberJoined | MemberLeft | CallStarted | CallEnded
              | Signal | Replaced | Kicked | CallMessage | Ban | BanLifted | PeerReconnected)
"""What daemons hand each other."""


class Fact(msgspec.Struct, frozen=True):
    """Something that happened on this daemon, for observers."""


class Connected(Fact):
    user: str
    address: str
    room: str
    online: int


class Disconnected(Fact):
    user: str
    address: str
    rooms: list[str]
    online: int


class ReplacedHere(Fact):
    """C{user}'s connection here was closed for a newer one, here or on another daemon."""

    user: str
    elsewhere: bool


class Joined(Fact):
    """C{user} joined C{room}; C{quiet} when the line of its connect says so already."""

    user: str
    room: str
    members: int
    quiet: bool = False


class Left(Fact):
    """C{user} left C{room}; C{quiet} when the line of its disconnect says so."""

    user: str
    room: str
    members: int
    quiet: bool = False


class RoomPosted(Fact):
    user: str
    room: str
    members: int


class DirectSent(Fact):
    user: str
    to_user: str


class Availability(Fact):
    user: str
    available: bool


class PeerRequested(Fact):
    user: str
    skipped: str


class Paired(Fact):
    """C{user} asked, and was paired with C{peer} (impolite, and polite), in C{segment}."""

    user: str
    peer: str
    segment: str = "default"
    common: tuple = ()


class NoPeer(Fact):
    user: str


class PairingUndone(Fact):
    """C{user} left while its pairing with C{peer} was under way."""

    user: str
    peer: str


class SignalRelayed(Fact):
    user: str
    to_user: str


class HungUp(Fact):
    """
    C{user} hung up on C{peer}; their call lasted C{seconds} (C{None}: it
    did not start on this daemon's watch).
    """

    user: str
    peer: str
    seconds: float | None = None


class CallOver(Fact):
    """
    The call of C{user} and C{peer} ended: C{peer} C{reason} (hung up,
    skipped, disconnected, blocked, reported -- the last two the user is
    told only as C{ended}); it lasted C{seconds} (C{None}: neither user was
    here when it started -- a daemon died, or one moved to another).
    """

    user: str
    peer: str
    reason: str
    seconds: float | None = None


class Reaped(Fact):
    """C{user}'s daemon died; this one cleaned up after it."""

    user: str


class KickedHere(Fact):
    user: str
    reason: str


class ServerPosted(Fact):
    """The server API posted to C{room}, or wrote to C{user}."""

    room: str = ""
    user: str = ""

"""
The seams of the domain: what it needs of a connection (L{IConnection})
and of the edge that renders pushes (L{IOutlet}); the backends, cut by
concept as centrifuge cuts them -- streams (L{IStreams}), sessions
(L{ISessions}), matchmaking (L{IMatchmaking}) and the other daemons
(L{IBus}), and those of safety (L{aleatoria.domain.safety_ports}); what
it offers them in return (L{IReceiver}); and who hears what happened
(L{IObserver}, L{IAccounting}). Each backend seam has a memory and a
Redis implementation, held to one contract suite.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from zope.interface import Attribute, Interface

if TYPE_CHECKING:
    from aleatoria.domain.events import (
        DirectMessage,
        Fact,
        MemberJoined,
        MemberLeft,
        Push,
        RoomMessage,
    )
    from aleatoria.domain.matchmaking import Ask, Match, Pairing, Seat
    from aleatoria.domain.values import (
        Claim,
        Conversation,
        Meeting,
        MembersPage,
        Posted,
        RoomsPage,
        Since,
    )

ADDRESS_KEPT = 86400
"""Seconds a user's client address is kept after its session ends (for reports)."""

MEETING_KEPT = 86400
"""Seconds a user's most recent match is remembered after it ended (for reports)."""


class IConnection(Interface):
    """One client's connection, as the domain sees it."""

    user_id = Attribute("The identity the handshake established.")
    address = Attribute("The client's address, as it is counted and logged.")
    segment = Attribute("The part of the matchmaking pool the user is paired within.")

    def may_join(room: str) -> bool:
        """Whether the connection's credentials allow joining C{room}."""

    def budget_refills_in() -> float:
        """Seconds until the user's message budget is full again (0: it is)."""

    def spent_elsewhere(seconds: float) -> None:
        """
        The user spent its budget on a connection a daemon has released:
        it is full again only in C{seconds}.
        """

    def charge(messages: int) -> None:
        """The request being handled costs C{messages} more of the user's rate."""

    def writable() -> Deferred[None]:
        """Fire once the client takes more (at once if it does now), or it is dropped."""

    def holding(count: int) -> None:
        """C{count} messages wait for the client behind a replay (past a bound: dropped)."""

    def replaced() -> None:
        """A newer connection of the same user took over: close this one."""

    def going_away() -> None:
        """The daemon is stopping: close this one, saying when to come back."""

    def kick(reason: str) -> None:
        """The server API cut the user off: close this one, giving C{reason}."""


class IOutlet(Interface):
    """How pushes reach connections here: the edge renders them."""

    def send(connections: Collection[IConnection], push: Push) -> None:
        """Render C{push} (once per view of it) and write it to each of C{connections}."""


class IStreams(Interface):
    """
    Numbered, kept streams -- a room's messages, a user's inbox -- each
    message kept and handed to every daemon in one atomic step.
    """

    def post_room(message: RoomMessage, at_ns: int) -> Deferred[Posted]:
        """
        Number a L{RoomMessage} (of time C{at_ns}, Unix nanoseconds, by
        which history is ordered and paged) in its room's stream, keep it,
        and hand it numbered to every daemon's receiver
        (L{IReceiver.room_post}), this one's too, in the order of the
        stream's offsets. Fire with a L{Posted}.

        @raise StoreUnavailable: it may not have been kept, nor handed on.
        """

    def post_direct(message: DirectMessage) -> Deferred[Posted]:
        """
        Keep a L{DirectMessage} in the pair's history and number it into
        both inboxes (C{system} has none); hand each party its copy on its
        daemon (L{IReceiver.inbox_post}). Fire with a L{Posted}.

        @raise Forbidden: either party blocks the other (L{aleatoria.domain.safety_ports.IBlocks}):
            nothing is kept, nobody handed anything.
        @raise StoreUnavailable: as for L{post_room}.
        """

    def room_history(room: str, limit: int,
                     before_ns: int | None = None) -> Deferred[list[RoomMessage]]:
        """Up to C{limit} messages of C{room}, newest first, older than C{before_ns}."""

    def room_since(room: str, offset: int, epoch: str) -> Deferred[Since]:
        """
        The L{Since} of C{room}'s stream after C{offset} of C{epoch}: the
        messages only when all that was missed is kept, of that epoch.
        """

    def direct_history(reader: str, other: str, limit: int) -> Deferred[list[DirectMessage]]:
        """The last C{limit} messages of the pair, oldest first, numbered as C{reader}'s inbox."""

    def inbox_since(user: str, offset: int, epoch: str) -> Deferred[Since]:
        """The L{Since} of C{user}'s inbox, as L{room_since}."""

    def conversations(user: str, limit: int, before: int = 0) -> Deferred[list[Conversation]]:
        """Up to C{limit} L{Conversation}s, the most recent first, before offset C{before}."""

    def mark_read(user: str, partner: str, offset: int) -> Deferred[int]:
        """C{user} read its conversation with C{partner} up to C{offset}: fire with what is left."""

    def full() -> bool:
        """Whether history is at its byte budget with nothing left to evict."""


class ISessions(Interface):
    """Which daemon serves each user, and which rooms each user is in."""

    node = Attribute("This daemon's id among those sharing the backend.")

    def claim(user: str, address: str = "") -> Deferred[Claim]:
        """
        C{user} connected here, from client C{address}: make this daemon
        its owner, ending any earlier session (out of its rooms and the
        pool), and take back its held match, if any, or the match of the
        session it replaces. Fire with a L{Claim}.
        """

    def release(user: str, budget_refills_in: float = 0,
                hold: bool = False) -> Deferred[str | None]:
        """
        C{user}'s connection here is gone; its message budget refills in
        C{budget_refills_in} seconds. If this daemon still owns it: out of
        its rooms and the pool, its match ended -- or, with C{hold} (the
        connection was lost, not closed), held for the call grace: ended
        only if the user has not claimed it back when that is over
        (L{IReceiver.call_lapsed}). Fire with the former partner of an
        ended match, or C{None}.
        """

    def join_room(room: str, user: str) -> Deferred[None]:
        """Record C{user} as a member of C{room}."""

    def leave_room(room: str, user: str) -> Deferred[None]:
        """Forget C{user}'s membership of C{room}."""

    def room_members(room: str, limit: int, after: str) -> Deferred[MembersPage]:
        """One page of C{room}'s live members: C{(page, count, next)}."""

    def rooms(limit: int, after: str) -> Deferred[RoomsPage]:
        """One page of the rooms with members: C{([(room, members)], total)}."""

    def user_rooms(user: str) -> Deferred[list[str]]:
        """The rooms C{user} is in, sorted."""

    def address_of(user: str) -> Deferred[str | None]:
        """
        The client address C{user} last connected from: while it is
        connected, and for L{ADDRESS_KEPT} seconds after; else C{None}.
        """

    def whereabouts(user: str) -> Deferred[str | None]:
        """The id of the live daemon that has C{user}, or C{None}."""

    def daemons() -> Deferred[list[dict[str, object]]]:
        """Each live daemon's load: C{{"node", "connections", "rooms"}}."""

    def listen(receiver: IReceiver) -> None:
        """Tell C{receiver} (an L{IReceiver}) of sessions that ended elsewhere."""

    def leave() -> Deferred[None]:
        """Every session here is released (at shutdown): the others may forget this daemon."""

    def ping() -> Deferred[object]:
        """Fire when the backend answers, errback when it cannot."""


class IMatchmaking(Interface):
    """The pool of users waiting for a call, and the matches (see L{matchmaking})."""

    def offer(user: str, seat: Seat | None = None) -> Deferred[None]:
        """
        C{user} is available: into the pool, or once its match ends; as
        its L{aleatoria.domain.matchmaking.Seat} says (C{None}: as it last said).
        """

    def withdraw(user: str) -> Deferred[None]:
        """C{user} is unavailable: out of the pool."""

    def pair(requester: str, skipped: str, ask: Ask) -> Deferred[Pairing]:
        """
        Serve one C{request_random_peer}, atomically, held to the rules
        of C{ask} (an L{aleatoria.domain.matchmaking.Ask}): fire with a
        L{Pairing}. Two users either of whom blocks the other
        (L{aleatoria.domain.safety_ports.IBlocks}) are never paired.
        """

    def hang_up(user: str, peer: str) -> Deferred[bool]:
        """End the match of C{user} and C{peer}, if matched; fire with whether they were."""

    def match_of(user: str) -> Deferred[Match | None]:
        """The user's current L{Match}, or C{None}."""

    def grace_left(user: str) -> Deferred[int]:
        """Milliseconds until the grace of C{user}'s held match ends (0: none held)."""

    def pool_size() -> Deferred[int]:
        """The number of users in the pool."""

    def last_match(user: str) -> Deferred[Meeting | None]:
        """
        C{user}'s current match, or else its most recent one (for
        L{MEETING_KEPT} seconds after it ended): a L{Meeting}, or C{None}.
        """


class IBus(Interface):
    """The other daemons sharing the backend, as the domain reaches them."""

    node = Attribute("This daemon's id.")
    subscribed = Attribute("Whether what the others send reaches this daemon.")

    def deliver(user: str, push: Push) -> Deferred[bool]:
        """
        Hand C{push} to C{user} on the daemon that has it; fire with whether
        a live daemon has the user.

        @raise StoreUnavailable: that daemon lives but did not hear it.
        """

    def broadcast(room: str, push: MemberJoined | MemberLeft) -> Deferred[None]:
        """
        Hand C{push} to C{room}'s members on every other daemon.

        @raise StoreUnavailable: some daemon may have missed it.
        """

    def replaced(owner: str, user: str) -> Deferred[object] | None:
        """Tell daemon C{owner} that C{user} connected here instead."""

    def kick(user: str, reason: str) -> Deferred[bool]:
        """Have the daemon that has C{user} close it; fire with whether one has it."""

    def listen(receiver: IReceiver) -> None:
        """Hand what the other daemons send to C{receiver}, an L{IReceiver}."""


class IReceiver(Interface):
    """What the backends hand the domain (the hub provides it)."""

    def sessions_here() -> dict[str, list[str]]:
        """Each user connected here, with its rooms: C{{user: [room, ...]}}."""

    def calls_here() -> dict[str, list[str]]:
        """Each user here in a call: C{{user: [partner, role]}}, as it was told."""

    def load() -> dict[str, int]:
        """This daemon's connections and rooms: C{{"connections": N, "rooms": M}}."""

    def room_post(message: RoomMessage) -> None:
        """A numbered L{RoomMessage}, for its room's members here."""

    def inbox_post(user: str, message: DirectMessage) -> bool:
        """A numbered L{DirectMessage} of C{user}'s inbox, if C{user} is here; whether it is."""

    def deliver_local(user: str, push: Push) -> None:
        """Another daemon hands C{push} to C{user}, if connected here."""

    def broadcast_local(room: str, push: MemberJoined | MemberLeft) -> None:
        """Another daemon hands C{push} to C{room}'s members here."""

    def replaced_elsewhere(user: str) -> None:
        """C{user} connected to another daemon: close its connection here."""

    def kicked(user: str, reason: str) -> None:
        """Another daemon's server API cut C{user} off."""

    def reaped(user: str, rooms: Iterable[str], peer: str | None) -> None:
        """C{user}'s daemon died: it left C{rooms}; C{peer}, if any, lost its call."""

    def call_lapsed(user: str, peer: str) -> None:
        """C{user} did not come back within the grace of its held call: C{peer} lost it."""


class IObserver(Interface):
    """Hears each L{aleatoria.domain.events.Fact}: log lines, breadcrumbs, counters."""

    def happened(fact: Fact) -> None:
        """C{fact} happened on this daemon."""


class IAccounting(Interface):
    """How the domain's calls to its seams are timed, traced, and their failures reported."""

    def timed(d: Deferred[Any], operation: str) -> None:
        """Time the Deferred C{d} of C{operation} (a metric, a span of the trace)."""

    def failed(failure: Failure, operation: str, user: str | None = None) -> None:
        """Report an unexpected failure of C{operation} (not an outage: the backend tells those)."""


"""
Rooms: who is in which room on this daemon, joining and leaving within
the quotas, presence (members joined and left), member pages and history.
"""

from __future__ import annotations

import collections
from collections.abc import Set
from dataclasses import dataclass
from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred, succeed

from aleatoria.domain.clock import format_ns, parse_rfc3339
from aleatoria.domain.events import Joined, Left, MemberJoined, MemberLeft, RoomMessage
from aleatoria.domain.membership import Membership
from aleatoria.domain.ports import IConnection
from aleatoria.domain.refusals import Forbidden, Invalid, NotInRoom, QuotaExceeded
from aleatoria.domain.rules import check_limit, check_room

if TYPE_CHECKING:
    from aleatoria.domain.hub import Hub
    from aleatoria.domain.values import MembersPage

NOT_IN_ROOM = "You are not in that room. Join the room first."
MAX_MEMBERS_PAGE = 1000
MAX_HISTORY_PAGE = 100
"""The most messages one history request returns, whatever C{limit} asks."""


@dataclass(frozen=True)
class RoomQuota:
    """
    Rooms with members on this daemon, and members in each, at most; and
    rooms that one client address opened -- joined while they had no
    member here, and that have members still.
    """

    rooms: int = 100_000
    room_members: int = 10_000
    rooms_per_address: int = 1_000


class Rooms:
    """
    @param hub: the L{aleatoria.domain.hub.Hub}: its connections, delivery,
        seams, clock, work and observers.
    @param max_rooms: rooms one connection may be in.
    @param presence_limit: members of a room on this daemon up to which
        they hear each other come and go.
    @param quota: the L{RoomQuota}.
    """

    def __init__(self, hub: Hub, max_rooms: int, presence_limit: int,
                 quota: RoomQuota | None = None) -> None:
        self._hub = hub
        self._max_rooms = max_rooms
        self._presence_limit = presence_limit
        self._quota = quota or RoomQuota()
        self.membership = Membership()
        self._opened_by: dict[str, str] = {}
        """Room -> the client address whose user opened it (L{RoomQuota})."""
        self._opened: collections.Counter[str] = collections.Counter()
        """Address -> rooms it opened that have members still."""

    def rooms_of(self, user: str) -> Set[str]:
        return self.membership.rooms_of(user)

    def members_here(self, room: str) -> Set[str]:
        return self.membership.members(room)

    # What clients ask

    def join(self, conn: IConnection, room: str) -> None:
        """Put C{conn}'s user in C{room}, if it may be there."""
        check_room(room)
        rooms = self.rooms_of(conn.user_id)
        if room in rooms:
            return
        if len(rooms) >= self._max_rooms:
            raise Forbidden(f"You are in {self._max_rooms} rooms; leave one first.")
        if not conn.may_join(room):
            raise Forbidden("Your token does not let you join that room.")
        self._room_quota(room, conn.address)
        self.enter(conn, room)

    def _room_quota(self, room: str, address: str) -> None:
        """
        @raise QuotaExceeded: C{room} is full, or a new room would be one
            more than this daemon keeps, or than C{address} may open.
        """
        members = len(self.membership.members(room))
        if members >= self._quota.room_members:
            raise QuotaExceeded(f"That room has {members} members, as many as it may.")
        if members:
            return
        if len(self.membership.rooms()) >= self._quota.rooms:
            raise QuotaExceeded("There are as many rooms as there may be; join one of them.")
        if self._opened[address] >= self._quota.rooms_per_address:
            raise QuotaExceeded("The users of your address have opened as many rooms as they "
                                "may; join a room that has members, or empty one of theirs.")

    def leave(self, conn: IConnection, room: str) -> None:
        """Take C{conn}'s user out of C{room}, if it is there."""
        check_room(room)
        if room in self.rooms_of(conn.user_id):
            self.exit(conn.user_id, room)

    def members(self, conn: IConnection, room: str, limit: int = MAX_MEMBERS_PAGE,
                after: str = "") -> Deferred[MembersPage]:
        """
        Fire with one page of the members of C{room} on every daemon: up to
        C{limit} ids (at most L{MAX_MEMBERS_PAGE}) in order, those after
        C{after}: C{(page, count, next)}.
        """
        self.member_of(conn, room)
        check_limit(limit)
        d = self._hub.sessions.room_members(room, min(limit, MAX_MEMBERS_PAGE), after)
        return self._hub.work.watch(d, "room_members", conn.user_id, asked=True)

    def history(self, conn: IConnection, room: str, limit: int,
                before: str = "") -> Deferred[list[RoomMessage]]:
        """
        Fire with up to C{limit} (at most L{MAX_HISTORY_PAGE}) messages of
        C{room} older than C{before} (an RFC 3339 time, if given).
        """
        self.member_of(conn, room)
        check_limit(limit)
        try:
            before_ns = parse_rfc3339(before) if before else None
        except ValueError:
            raise Invalid("before must be an RFC 3339 timestamp.") from None
        d = self._hub.streams.room_history(room, min(limit, MAX_HISTORY_PAGE), before_ns)
        return self._hub.work.watch(d, "room_messages", conn.user_id, asked=True)

    def member_of(self, conn: IConnection, room: str) -> None:
        """@raise NotInRoom: C{conn}'s user is not in C{room}."""
        if not room:
            raise Invalid("Which room? The message names none.")
        if room not in self.rooms_of(conn.user_id):
            raise NotInRoom(NOT_IN_ROOM)

    # Membership

    def enter(self, conn: IConnection, room: str, quiet: bool = False) -> None:
        """
        Put C{conn}'s user in C{room} and tell the members. C{quiet} when
        the line of the connect names the room already.
        """
        user = conn.user_id
        if not self.membership.add(room, user):
            return
        hub = self._hub
        hub.delivery.joined(user, ("room", room))
        members = self.membership.members(room)
        if len(members) == 1:
            self._opening(room, conn.address)
        self.announce(room, MemberJoined(room, user, self._now()))
        hub.work.watch(hub.sessions.join_room(room, user), "join_room", user)
        hub.tell(Joined(user, room, len(members), quiet))

    def exit(self, user: str, room: str, persist: bool = True,
             announce: bool = True) -> Deferred[object] | Deferred[None]:
        """
        Take C{user} out of C{room} and tell the members. C{persist} is false
        when the release of the user's session does that part -- and the
        line of the disconnect says it. The telling, as a Deferred.
        """
        hub = self._hub
        self.membership.discard(room, user)
        members = len(self.membership.members(room))
        if not members:
            self._emptied(room)
        hub.delivery.left(user, ("room", room))
        told = self.announce(room, MemberLeft(room, user, self._now())) if announce \
            else succeed(None)
        if persist:
            hub.work.watch(hub.sessions.leave_room(room, user), "leave_room")
        hub.tell(Left(user, room, members, quiet=not persist))
        return told

    def exit_all(self, user: str,
                 announce: bool) -> list[Deferred[object] | Deferred[None]]:
        """Take C{user} out of every room; the tellings, as Deferreds."""
        return [self.exit(user, room, persist=False, announce=announce)
                for room in sorted(self.rooms_of(user))]

    def _opening(self, room: str, address: str) -> None:
        """C{room} has members because a user at C{address} joined it: count it as theirs."""
        self._opened_by[room] = address
        self._opened[address] += 1

    def _emptied(self, room: str) -> None:
        """C{room} has no member here any more: it no longer counts for whoever opened it."""
        address = self._opened_by.pop(room, None)
        if address is None:
            return
        self._opened[address] -= 1
        if not self._opened[address]:
            del self._opened[address]

    # Presence

    def announce(self, room: str, push: MemberJoined | MemberLeft) -> Deferred[object]:
        """
        Tell the members of C{room}, here and elsewhere, that somebody came
        or went; fire with L{FAILED} if some daemon may have missed it.
        """
        self.local(room, push)
        hub = self._hub
        d = hub.work.timed(hub.bus.broadcast(room, push), "broadcast")
        return hub.work.watch(d, "broadcast", timed=False)

    def local(self, room: str, push: MemberJoined | MemberLeft) -> None:
        """
        Tell the members of C{room} here that somebody came or went -- all
        but that user: its own comings and goings are never news to it,
        not even those of a session of its that ended elsewhere as it came
        back here. Only while they are at most C{presence_limit}: past it,
        each join and leave would cost a message to every member, and a
        room filling up the square of its size.
        """
        members = self.membership.members(room)
        if len(members) <= self._presence_limit:
            self._hub.delivery.fan_out([u for u in members if u != push.user], push)

    def _now(self) -> str:
        return format_ns(self._hub.clock.next_ns())

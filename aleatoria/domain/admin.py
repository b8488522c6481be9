"""
What a product's backend may do through the server API
(L{aleatoria.http.api}): speak as C{system} to a room or a user, cut a
user off, and read rooms, members, users and load -- across every
daemon, as plain values.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from twisted.internet.defer import Deferred

from aleatoria.domain.chat import check_room_for_history, confirm
from aleatoria.domain.clock import format_ns
from aleatoria.domain.events import DirectMessage, KickedHere, RoomMessage, ServerPosted
from aleatoria.domain.refusals import Offline
from aleatoria.domain.rules import (
    SYSTEM,
    check_content,
    check_reason,
    check_room,
    check_user,
)

if TYPE_CHECKING:
    from aleatoria.domain.bans import Bans
    from aleatoria.domain.hub import Hub
    from aleatoria.domain.values import MembersPage, RoomsPage

_T = TypeVar("_T")


@dataclass(frozen=True)
class Whereabouts:
    """Where a user is: its daemon (C{None}: offline), its rooms, whether in a call."""

    node: str | None
    rooms: list[str]
    in_call: bool


@dataclass(frozen=True)
class Load:
    """Each live daemon's load, the pool's size, and the rooms with members."""

    daemons: list[dict[str, object]]
    pool: int
    rooms: int


class Admin:
    """
    @param hub: the L{aleatoria.domain.hub.Hub}.
    @param max_content: longest content, in UTF-8 bytes (as for clients).
    """

    ROOMS_PAGE = 1000
    MEMBERS_PAGE = 1000

    def __init__(self, hub: Hub, max_content: int) -> None:
        self._hub = hub
        self._max_content = max_content

    # Speaking as the server

    async def publish(self, room: str, content: str) -> RoomMessage:
        """
        A message from C{system} to the members of C{room} on every daemon,
        kept in its history; the L{RoomMessage} as it was stamped.
        """
        check_room(room)
        at = self._stamp(content)
        message = RoomMessage(room, SYSTEM, content, uuid.uuid4().hex, format_ns(at))
        self._hub.tell(ServerPosted(room=room))
        confirm(await self._hub.chat.post_room(message, at), message.message_id)
        return message

    async def send(self, to_user: str, content: str) -> tuple[DirectMessage, bool]:
        """
        A direct message from C{system} to C{to_user}, kept in their
        conversation (read with C{withUser} C{system}): the
        L{DirectMessage}, and whether the user is online now.
        """
        check_user(to_user)
        at = self._stamp(content)
        message = DirectMessage(SYSTEM, to_user, content, uuid.uuid4().hex, format_ns(at))
        self._hub.tell(ServerPosted(user=to_user))
        outcome = await self._hub.direct.post(message)
        confirm(outcome, message.message_id)
        return message, outcome.online

    def _stamp(self, content: str) -> int:
        """Check the content as a client's would be; the time of its message."""
        check_content(content, self._max_content)
        check_room_for_history(self._hub.streams)
        return self._hub.clock.next_ns()

    async def disconnect(self, user: str, reason: str) -> None:
        """
        Close C{user}'s connection, on whichever daemon, with 4003 and
        C{reason}.

        @raise Offline: the user is connected nowhere.
        """
        check_user(user, "userId")
        check_reason(reason)
        if not self.kick_here(user, reason):
            found = await self._read(self._hub.bus.kick(user, reason), "kick")
            if not found:
                raise Offline(f"{user} is not connected.")

    def kick_here(self, user: str, reason: str) -> bool:
        """Close C{user}'s connection to this daemon, if it has one; whether it had."""
        conn = self._hub.connections.get(user)
        if conn is None:
            return False
        self._hub.tell(KickedHere(user, reason))
        conn.kick(reason)
        return True

    @property
    def bans(self) -> Bans:
        """The hub's L{aleatoria.domain.bans.Bans}: set, lift and list bans."""
        return self._hub.bans

    # Reading

    def rooms(self, limit: int, after: str) -> Deferred[RoomsPage]:
        """One page of the rooms with members, on every daemon: C{([(room, members)], total)}."""
        return self._read(self._hub.sessions.rooms(limit, after))

    def members(self, room: str, limit: int, after: str) -> Deferred[MembersPage]:
        """One page of the members of C{room} on every daemon: C{(page, count, next)}."""
        check_room(room)
        return self._read(self._hub.sessions.room_members(room, limit, after), "room_members")

    async def user(self, user: str) -> Whereabouts:
        """The user's L{Whereabouts}."""
        check_user(user, "userId")
        hub = self._hub
        node = await self._read(hub.sessions.whereabouts(user))
        rooms = await self._read(hub.sessions.user_rooms(user))
        match = await self._read(hub.matchmaking.match_of(user))
        return Whereabouts(node, rooms if node is not None else [], match is not None)

    async def stats(self) -> Load:
        """The L{Load} of every daemon."""
        hub = self._hub
        daemons = await self._read(hub.sessions.daemons(), "daemons")
        pool = await self._read(hub.matchmaking.pool_size(), "pool_size")
        _, rooms = await self._read(hub.sessions.rooms(1, ""))
        return Load(daemons, pool, rooms)

    def _read(self, d: Deferred[_T], operation: str = "api_read") -> Deferred[_T]:
        """C{d}, watched as work a caller waits for (L{Unavailable} if it fails)."""
        return self._hub.work.watch(d, operation, asked=True)

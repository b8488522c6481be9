"""
Sessions in the embedded backend: one daemon, one process -- every session
is this one's. It keeps the record of who is in which room (the live
members of each, sorted, for pages that cost their size) and what each
released user spent of its message budget.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred, succeed
from zope.interface import implementer

from aleatoria.domain.limits import Seconds
from aleatoria.domain.membership import Membership
from aleatoria.domain.ports import ADDRESS_KEPT, IReceiver, ISessions
from aleatoria.domain.values import Claim, MembersPage, RoomsPage

if TYPE_CHECKING:
    from aleatoria.memory.matchmaking import MemoryMatchmaking


class _Rosters:
    """
    Each room's members that have a session, sorted: a page of them costs
    its size (and a binary search), not the room's.
    """

    def __init__(self) -> None:
        self._rooms: dict[str, list[str]] = {}

    def add(self, room: str, user: str) -> None:
        members = self._rooms.setdefault(room, [])
        at = bisect_left(members, user)
        if at == len(members) or members[at] != user:
            members.insert(at, user)

    def discard(self, room: str, user: str) -> None:
        members = self._rooms.get(room)
        if members is None:
            return
        at = bisect_left(members, user)
        if at < len(members) and members[at] == user:
            del members[at]
            if not members:
                del self._rooms[room]

    def count(self, room: str) -> int:
        return len(self._rooms.get(room, ()))

    def page(self, room: str, limit: int, after: str) -> MembersPage:
        """Up to C{limit} members after C{after}; the count; the next page's C{after}."""
        members = self._rooms.get(room, [])
        start = bisect_right(members, after) if after else 0
        page = members[start:start + limit]
        return page, len(members), page[-1] if start + limit < len(members) else None


@implementer(ISessions)
class MemorySessions:
    """
    @param matchmaking: the L{aleatoria.memory.matchmaking.MemoryMatchmaking},
        which a session's end takes the user out of.
    @param seconds: the clock.
    """

    node = "local"
    """The only daemon the embedded backend knows: this one."""

    def __init__(self, matchmaking: MemoryMatchmaking, seconds: Seconds) -> None:
        self._matchmaking = matchmaking
        self._seconds = seconds
        self.membership = Membership()
        self._rosters = _Rosters()
        self.users: set[str] = set()
        self._budgets: dict[str, float] = {}
        self._addresses: dict[str, tuple[str, float | None]] = {}
        """Each user's last client address, and when its session ended (None: it lasts)."""
        self._receiver: IReceiver = None  # type: ignore[assignment]  # until listen()

    def listen(self, receiver: IReceiver) -> None:
        self._receiver = receiver

    def claim(self, user: str, address: str = "") -> Deferred[Claim]:
        if address:
            self._addresses[user] = (address, None)
        refills_at = self._budgets.pop(user, 0)
        now = self._seconds()
        refills_in = refills_at - now if refills_at > now else None
        if user not in self.users:
            self.users.add(user)
            return succeed(Claim(None, None, (), refills_in, self._matchmaking.resume(user)))
        rooms = tuple(sorted(self.membership.rooms_of(user)))
        former_peer = self._end(user, hold=True)
        return succeed(Claim(self.node, former_peer, rooms, refills_in,
                             self._matchmaking.resume(user)))

    def release(self, user: str, budget_refills_in: float = 0,
                hold: bool = False) -> Deferred[str | None]:
        if user not in self.users:
            return succeed(None)
        self.users.discard(user)
        if user in self._addresses:
            self._addresses[user] = (self._addresses[user][0], self._seconds())
        if budget_refills_in > 0:
            self._budgets[user] = self._seconds() + budget_refills_in
        return succeed(self._end(user, hold))

    def _end(self, user: str, hold: bool = False) -> str | None:
        for room in list(self.membership.rooms_of(user)):
            self.membership.discard(room, user)
            self._rosters.discard(room, user)
        return self._matchmaking.leave(user, hold)

    def lapse(self) -> None:
        """End the held matches whose grace is over; their partners hear it."""
        for user, peer in self._matchmaking.lapse():
            self._receiver.call_lapsed(user, peer)

    def join_room(self, room: str, user: str) -> Deferred[None]:
        self.membership.add(room, user)
        if user in self.users:
            self._rosters.add(room, user)
        return succeed(None)

    def leave_room(self, room: str, user: str) -> Deferred[None]:
        self.membership.discard(room, user)
        self._rosters.discard(room, user)
        return succeed(None)

    def room_members(self, room: str, limit: int, after: str) -> Deferred[MembersPage]:
        return succeed(self._rosters.page(room, limit, after))

    def user_rooms(self, user: str) -> Deferred[list[str]]:
        return succeed(sorted(self.membership.rooms_of(user)))

    def rooms(self, limit: int, after: str) -> Deferred[RoomsPage]:
        names = sorted(self.membership.rooms())
        start = bisect_right(names, after) if after else 0
        page = [(room, self._rosters.count(room)) for room in names[start:start + limit]]
        return succeed((page, len(names)))

    def address_of(self, user: str) -> Deferred[str | None]:
        address, _ = self._addresses.get(user, (None, None))
        return succeed(address)

    def whereabouts(self, user: str) -> Deferred[str | None]:
        return succeed(self.node if user in self.users else None)

    def daemons(self) -> Deferred[list[dict[str, object]]]:
        return succeed([{"node": self.node, **self._receiver.load()}])

    def leave(self) -> Deferred[None]:
        return succeed(None)

    def ping(self) -> Deferred[object]:
        return succeed(None)

    def expire(self) -> None:
        """Forget the budgets that are full again by now, and addresses kept long enough."""
        now = self._seconds()
        self._budgets = {u: t for u, t in self._budgets.items() if t > now}
        self._addresses = {u: (a, ended) for u, (a, ended) in self._addresses.items()
                           if ended is None or ended > now - ADDRESS_KEPT}

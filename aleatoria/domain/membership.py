"""
Who is in which room, indexed both ways. The hub keeps one for the
connections of its daemon; the memory store keeps one as its record.
"""

from collections.abc import KeysView
from collections.abc import Set as AbstractSet

_EMPTY: frozenset[str] = frozenset()


class Membership:
    """Rooms and their members: C{room -> users} and C{user -> rooms}, kept in step."""

    def __init__(self) -> None:
        self._members: dict[str, set[str]] = {}
        self._rooms: dict[str, set[str]] = {}

    def add(self, room: str, user: str) -> bool:
        """Put C{user} in C{room}; whether it was not there yet."""
        members = self._members.setdefault(room, set())
        if user in members:
            return False
        members.add(user)
        self._rooms.setdefault(user, set()).add(room)
        return True

    def discard(self, room: str, user: str) -> None:
        """Take C{user} out of C{room}; a room or user left with nothing is forgotten."""
        _discard(self._members, room, user)
        _discard(self._rooms, user, room)

    def members(self, room: str) -> AbstractSet[str]:
        """The members of C{room} (a live view: copy it to keep it)."""
        return self._members.get(room, _EMPTY)

    def rooms_of(self, user: str) -> AbstractSet[str]:
        """The rooms of C{user} (a live view: copy it to keep it)."""
        return self._rooms.get(user, _EMPTY)

    def rooms(self) -> KeysView[str]:
        """The names of the rooms that have members."""
        return self._members.keys()

    def users(self) -> KeysView[str]:
        """The users that are in a room."""
        return self._rooms.keys()


def _discard(table: dict[str, set[str]], key: str, value: str) -> None:
    values = table.get(key)
    if values is not None:
        values.discard(value)
        if not values:
            del table[key]

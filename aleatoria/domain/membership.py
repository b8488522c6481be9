"""
Who is in which room, indexed both ways. The hub keeps one for the
connections of its daemon; the memory store keeps one as its record.
"""

_EMPTY = frozenset()


class Membership:
    """Rooms and their members: C{room -> users} and C{user -> rooms}, kept in step."""

    def __init__(self):
        self._members = {}
        self._rooms = {}

    def add(self, room, user):
        """Put C{user} in C{room}; whether it was not there yet."""
        members = self._members.setdefault(room, set())
        if user in members:
            return False
        members.add(user)
        self._rooms.setdefault(user, set()).add(room)
        return True

    def discard(self, room, user):
        """Take C{user} out of C{room}; a room or user left with nothing is forgotten."""
        _discard(self._members, room, user)
        _discard(self._rooms, user, room)

    def members(self, room):
        """The members of C{room} (a live view: copy it to keep it)."""
        return self._members.get(room, _EMPTY)

    def rooms_of(self, user):
        """The rooms of C{user} (a live view: copy it to keep it)."""
        return self._rooms.get(user, _EMPTY)

    def rooms(self):
        """The names of the rooms that have members."""
        return self._members.keys()

    def users(self):
        """The users that are in a room."""
        return self._rooms.keys()


def _discard(table, key, value):
    values = table.get(key)
    if values is not None:
        values.discard(value)
        if not values:
            del table[key]

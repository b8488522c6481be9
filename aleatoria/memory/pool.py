"""
The pool of the embedded backend: who is available, in which segment
(users of two segments are never paired), picked at random.
"""

from aleatoria.domain.matchmaking import DEFAULT_SEGMENT, Seat

DEFAULT_SEAT = Seat(DEFAULT_SEGMENT)


class RandomSet:
    """A set with O(1) add, remove and uniformly random choice."""

    def __init__(self):
        self._items = []
        self._index = {}

    def __len__(self):
        return len(self._items)

    def __contains__(self, item):
        return item in self._index

    def __iter__(self):
        return iter(self._items)

    def add(self, item):
        if item not in self._index:
            self._index[item] = len(self._items)
            self._items.append(item)

    def discard(self, item):
        position = self._index.pop(item, None)
        if position is None:
            return
        last = self._items.pop()
        if position < len(self._items):
            self._items[position] = last
            self._index[last] = position

    def choose(self, exclude, rng, fits):
        """
        A random member not in C{exclude} that C{fits}, or C{None}: the
        probes past a random start go on until one does, which is at once
        unless the requester blocked many in the pool, or they it.
        """
        size = len(self._items)
        if size == 0:
            return None
        start = rng.randrange(size)
        for step in range(size):
            item = self._items[(start + step) % size]
            if item not in exclude and fits(item):
                return item
        return None


class Pool:
    """
    Every available user, and the same by segment; each user's L{Seat}
    (what it said when it last became available), kept until it withdraws
    or leaves.
    """

    def __init__(self):
        self._all = RandomSet()
        self._segments = {}
        self._seats = {}

    def __len__(self):
        return len(self._all)

    def __contains__(self, user):
        return user in self._all

    def seat(self, user, seat):
        """C{user} is available as C{seat} says, from now on."""
        self.exit(user)
        self._seats[user] = seat

    def enter(self, user):
        self._all.add(user)
        segment = self._seats.get(user, DEFAULT_SEAT).segment
        self._segments.setdefault(segment, RandomSet()).add(user)

    def exit(self, user):
        """Out of the pool; its seat is kept, for when it enters again."""
        if user not in self._all:
            return
        self._all.discard(user)
        segment = self._seats.get(user, DEFAULT_SEAT).segment
        members = self._segments[segment]
        members.discard(user)
        if not members:
            del self._segments[segment]

    def forget(self, user):
        """Out of the pool, its seat forgotten."""
        self.exit(user)
        self._seats.pop(user, None)

    def choose(self, segment, exclude, rng, fits):
        """A random member of C{segment} not in C{exclude} that C{fits}, or C{None}."""
        members = self._segments.get(segment)
        return members.choose(exclude, rng, fits) if members else None

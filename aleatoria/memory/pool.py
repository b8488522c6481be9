"""
The pool of the embedded backend: who is available, in which segment
(users of two segments are never paired) and with which interests (a set
per interest, so that a request costs what its interests do, not what
the pool holds), picked at random.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Container, Iterable, Iterator

from aleatoria.domain.matchmaking import DEFAULT_SEGMENT, Ask, Seat

DEFAULT_SEAT = Seat(DEFAULT_SEGMENT)


class RandomSet:
    """A set with O(1) add, remove and uniformly random choice."""

    def __init__(self) -> None:
        self._items: list[str] = []
        self._index: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, item: object) -> bool:
        return item in self._index

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def add(self, item: str) -> None:
        if item not in self._index:
            self._index[item] = len(self._items)
            self._items.append(item)

    def discard(self, item: str) -> None:
        position = self._index.pop(item, None)
        if position is None:
            return
        last = self._items.pop()
        if position < len(self._items):
            self._items[position] = last
            self._index[last] = position

    def choose(self, exclude: Container[str], rng: random.Random,
               fits: Callable[[str], bool]) -> str | None:
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
    Every available user, the same by segment, and by segment and
    interest; each user's L{Seat}
    (what it said when it last became available), kept until it withdraws
    or leaves.
    """

    def __init__(self) -> None:
        self._all = RandomSet()
        self._segments: dict[str | tuple[str, str], RandomSet] = {}
        self._seats: dict[str, Seat] = {}

    def _sets(self, user: str) -> list[str | tuple[str, str]]:
        """The sets C{user} is in while available: its segment's, and its interests'."""
        seat = self._seats.get(user, DEFAULT_SEAT)
        return [seat.segment, *((seat.segment, interest) for interest in seat.interests)]

    def __len__(self) -> int:
        return len(self._all)

    def __contains__(self, user: object) -> bool:
        return user in self._all

    def seat(self, user: str, seat: Seat) -> None:
        """C{user} is available as C{seat} says, from now on."""
        self.exit(user)
        self._seats[user] = seat

    def enter(self, user: str) -> None:
        self._all.add(user)
        for key in self._sets(user):
            self._segments.setdefault(key, RandomSet()).add(user)

    def exit(self, user: str) -> None:
        """Out of the pool; its seat is kept, for when it enters again."""
        if user not in self._all:
            return
        self._all.discard(user)
        for key in self._sets(user):
            members = self._segments[key]
            members.discard(user)
            if not members:
                del self._segments[key]

    def forget(self, user: str) -> None:
        """Out of the pool, its seat forgotten."""
        self.exit(user)
        self._seats.pop(user, None)

    def choose(self, ask: Ask, exclude: Container[str], rng: random.Random,
               fits: Callable[[str], bool]) -> str | None:
        """
        A random member of the segment of C{ask} (an L{Ask}) not in
        C{exclude} that C{fits}: one sharing an interest if there is one,
        else anyone unless C{ask.only}; or C{None}.
        """
        keys: list[str | tuple[str, str]] = [(ask.segment, interest)
                for interest in rng.sample(ask.interests, len(ask.interests))]
        if not ask.only:
            keys.append(ask.segment)
        for key in keys:
            members = self._segments.get(key)
            found = members.choose(exclude, rng, fits) if members else None
            if found is not None:
                return found
        return None

    def common(self, user: str, interests: Iterable[str]) -> tuple[str, ...]:
        """Which of C{interests} C{user} has, in their order."""
        seat = self._seats.get(user, DEFAULT_SEAT)
        return tuple(interest for interest in interests if interest in seat.interests)

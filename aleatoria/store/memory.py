"""
The embedded store: everything in this process's memory.

It keeps the semantics of the Redis layout -- history capped per room and
per pair, each history expiring C{ttl} seconds after its last write -- so
switching backends changes durability, never behaviour.
"""

import random
from bisect import bisect_left, insort

from twisted.application.service import Service
from twisted.internet.defer import succeed
from twisted.internet.task import LoopingCall
from zope.interface import implementer

from . import IStore, direct_key


class _Pool:
    """A set with O(1) add, remove and uniformly random choice."""

    def __init__(self):
        self._items = []
        self._index = {}

    def __len__(self):
        return len(self._items)

    def __contains__(self, item):
        return item in self._index

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

    def choose(self, exclude, rng):
        """
        A random member not in C{exclude}, or C{None}. C{exclude} is small (a
        requester and a skipped peer), so a few probes past a random start
        always find a fit when one exists.
        """
        size = len(self._items)
        if size == 0:
            return None
        start = rng.randrange(size)
        for step in range(min(size, len(exclude) + 1)):
            item = self._items[(start + step) % size]
            if item not in exclude:
                return item
        return None


SWEEP_SECONDS = 60


@implementer(IStore)
class MemoryStore(Service):
    """
    @param clock: an L{IReactorTime} that times history out.
    @param ttl: seconds a history lives after its last write.
    @param history_size: messages kept per room and per conversation.
    """

    kind = "memory"

    def __init__(self, clock, ttl, history_size, rng=None):
        self._seconds = clock.seconds
        self._sweeper = LoopingCall(self.expire)
        self._sweeper.clock = clock
        self._ttl = ttl
        self._history_size = history_size
        self._rng = rng or random.Random()
        self._members = {}
        self._rooms_of = {}
        self._room_history = {}
        self._direct_history = {}
        self._expiry = {}
        self._pool = _Pool()

    def startService(self):
        super().startService()
        self._sweeper.start(SWEEP_SECONDS, now=False)

    def stopService(self):
        super().stopService()
        self._sweeper.stop()

    # Rooms

    def join_room(self, room, user):
        self._members.setdefault(room, set()).add(user)
        self._rooms_of.setdefault(user, set()).add(room)
        return succeed(None)

    def leave_room(self, room, user):
        _discard(self._members, room, user)
        _discard(self._rooms_of, user, room)
        return succeed(None)

    def room_members(self, room):
        return succeed(sorted(self._members.get(room, ())))

    def user_rooms(self, user):
        return succeed(sorted(self._rooms_of.get(user, ())))

    # History

    def save_room_message(self, room, envelope, at_ns):
        key = ("room", room)
        history = self._live(key, self._room_history, list)
        insort(history, (at_ns, envelope), key=_time_of)
        del history[: -self._history_size]
        return succeed(None)

    def room_messages(self, room, limit, before_ns=None):
        history = self._live(("room", room), self._room_history)
        end = len(history) if before_ns is None else bisect_left(
            history, before_ns, key=_time_of
        )
        page = history[max(0, end - limit) : end]
        return succeed([envelope for _, envelope in reversed(page)])

    def save_direct_message(self, user_a, user_b, envelope):
        key = ("dm", direct_key(user_a, user_b))
        history = self._live(key, self._direct_history, list)
        history.append(envelope)
        del history[: -self._history_size]
        return succeed(None)

    def direct_messages(self, user_a, user_b, limit):
        key = ("dm", direct_key(user_a, user_b))
        history = self._live(key, self._direct_history)
        return succeed(history[-limit:] if limit > 0 else [])

    def _live(self, key, table, create=None):
        """
        The history under C{key}: empty if it expired. With C{create}, make
        it if needed and restart its time to live, as a write does.
        """
        now = self._seconds()
        if self._expiry.get(key, now + 1) <= now:
            self._forget(key)
        if create is None:
            return table.get(key, [])
        self._expiry[key] = now + self._ttl
        return table.setdefault(key, create())

    def _forget(self, key):
        del self._expiry[key]
        self._room_history.pop(key, None)
        self._direct_history.pop(key, None)

    def expire(self):
        """Drop every history whose time to live has passed."""
        now = self._seconds()
        for key in [key for key, deadline in self._expiry.items() if deadline <= now]:
            self._forget(key)

    # Matchmaking pool

    def pool_add(self, user):
        self._pool.add(user)
        return succeed(None)

    def pool_remove(self, user):
        self._pool.discard(user)
        return succeed(None)

    def pool_pick(self, requester, exclude):
        peer = self._pool.choose({requester, *exclude}, self._rng)
        if peer is not None:
            self._pool.discard(requester)
            self._pool.discard(peer)
        return succeed(peer)

    def pool_size(self):
        return succeed(len(self._pool))

    def ping(self):
        return succeed(None)


def _time_of(entry):
    return entry[0]


def _discard(table, key, value):
    """Remove C{value} from the set C{table[key]}; drop the set when empty."""
    values = table.get(key)
    if values is not None:
        values.discard(value)
        if not values:
            del table[key]

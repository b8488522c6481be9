"""
The embedded store: everything in this process's memory.

It keeps the semantics of the Redis backend -- history capped per room and
per pair, each history expiring C{ttl} seconds after its last write, the
pool and matches changed in atomic steps -- so switching backends changes
durability and reach, never behaviour. One daemon, one process: every
session is this daemon's.
"""

import random
from bisect import bisect_left, bisect_right, insort
from collections import OrderedDict

from msgspec.structs import replace
from twisted.application.service import Service
from twisted.internet.defer import succeed
from twisted.internet.task import LoopingCall
from zope.interface import implementer

from aleatoria.domain.evictions import Evictions
from aleatoria.domain.matchmaking import IMPOLITE, POLITE, Match, Pairing
from aleatoria.domain.membership import Membership
from aleatoria.domain.ports import IStore
from aleatoria.domain.values import Claim, Place, direct_key
from aleatoria.edge.wire import SYSTEM, encode
from aleatoria.memory.inbox import Inbox, Numbering, numbered, since
from aleatoria.ops.reporting import guarded


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


class _Rosters:
    """
    Each room's members that have a session, sorted: a page of them costs
    its size (and a binary search), not the room's.
    """

    def __init__(self):
        self._rooms = {}

    def add(self, room, user):
        members = self._rooms.setdefault(room, [])
        at = bisect_left(members, user)
        if at == len(members) or members[at] != user:
            members.insert(at, user)

    def discard(self, room, user):
        members = self._rooms.get(room)
        if members is None:
            return
        at = bisect_left(members, user)
        if at < len(members) and members[at] == user:
            del members[at]
            if not members:
                del self._rooms[room]

    def count(self, room):
        return len(self._rooms.get(room, ()))

    def page(self, room, limit, after):
        """Up to C{limit} members after C{after}; the count; the next page's C{after}."""
        members = self._rooms.get(room, [])
        start = bisect_right(members, after) if after else 0
        page = members[start:start + limit]
        return page, len(members), page[-1] if start + limit < len(members) else None


SWEEP_SECONDS = 60
TELL_SECONDS = 5
"""How often evictions, if any, are told (one line sums them up)."""
_KINDS = {"room": "room", "dm": "direct", "inbox": "inbox"}


@implementer(IStore)
class MemoryStore(Service):
    """
    @param clock: an L{IReactorTime} that times history out.
    @param ttl: seconds a history lives after its last write.
    @param history_size: messages kept per room and per conversation.
    @param report: where a failing sweep is reported (it keeps running).
    @param max_bytes: what kept messages may weigh, encoded (a direct
        message once, though the pair's history and each inbox keep it):
        past it, the streams last written longest ago are evicted.
    """

    kind = "memory"
    node = "local"
    """The only daemon a memory store knows: this one."""

    def __init__(self, clock, ttl, history_size, rng=None, report=None, max_bytes=None):
        self._seconds = clock.seconds
        self._sweeper = LoopingCall(guarded(self.expire, report, "memory_expire"))
        self._sweeper.clock = clock
        self._teller = LoopingCall(guarded(self._tell, report, "memory_evictions"))
        self._teller.clock = clock
        self._ttl = ttl
        self._history_size = history_size
        self._rng = rng or random.Random()
        self._membership = Membership()
        self._rosters = _Rosters()
        self._room_history = {}
        self._direct_history = {}
        self._inboxes = {}
        self._numbering = {}
        """Each room's stream numbering (an inbox numbers its own)."""
        self._expiry = OrderedDict()
        """Each stream's deadline, in the order of their last write."""
        self._pool = _Pool()
        self._waiting = set()
        self._matches = {}
        self._sessions = set()
        self._budgets = {}
        self._max_bytes = max_bytes
        self._bytes = 0
        """What the kept messages weigh, encoded."""
        self._copies = {}
        """
        Per direct message kept (by its payload, which every copy shares):
        the copies left and what it weighs, counted once.
        """
        self.evictions = Evictions()

    def startService(self):
        super().startService()
        self._sweeper.start(SWEEP_SECONDS, now=False)
        if self._max_bytes is not None:
            self._teller.start(TELL_SECONDS, now=False)

    def stopService(self):
        super().stopService()
        self._sweeper.stop()
        if self._teller.running:
            self._teller.stop()

    # Rooms

    def join_room(self, room, user):
        self._membership.add(room, user)
        if user in self._sessions:
            self._rosters.add(room, user)
        return succeed(None)

    def leave_room(self, room, user):
        self._membership.discard(room, user)
        self._rosters.discard(room, user)
        return succeed(None)

    def room_members(self, room, limit, after):
        return succeed(self._rosters.page(room, limit, after))

    def user_rooms(self, user):
        return succeed(sorted(self._membership.rooms_of(user)))

    def rooms(self, limit, after):
        names = sorted(self._membership.rooms())
        start = bisect_right(names, after) if after else 0
        page = [(room, self._rosters.count(room)) for room in names[start:start + limit]]
        return succeed((page, len(names)))

    def whereabouts(self, user):
        return succeed(self.node if user in self._sessions else None)

    # History

    def save_room_message(self, room, envelope, at_ns, announce=None):
        """
        Number and keep C{envelope}; fire with its L{Place}, and no daemon
        missed it (there is no other: C{announce} is for shared stores).
        """
        key = ("room", room)
        history = self._live(key, self._room_history, list)
        numbering = self._numbering.setdefault(key, Numbering())
        place = numbering.next()
        message = numbered(envelope, place)
        insort(history, (at_ns, message), key=_time_of)
        self._bytes += _weight(message)
        for _, dropped in self._trim(history):
            self._bytes -= _weight(dropped)
        self._evict({key})
        return succeed((place, 0))

    def room_messages(self, room, limit, before_ns=None):
        history = self._live(("room", room), self._room_history)
        end = len(history) if before_ns is None else bisect_left(
            history, before_ns, key=_time_of
        )
        page = history[max(0, end - limit) : end]
        return succeed([envelope for _, envelope in reversed(page)])

    def room_since(self, room, offset, epoch):
        key = ("room", room)
        history = self._live(key, self._room_history)
        return succeed(since(self._numbering.get(key), (e for _, e in reversed(history)),
                             offset, epoch, self._history_size))

    def save_direct_message(self, sender, recipient, envelope, announce=None):
        """
        Keep C{envelope} in the pair's history and in each party's inbox
        (C{system} has none); fire with the L{Place} in each inbox, and 0:
        nothing was announced (C{announce} is for shared stores).
        """
        key = ("dm", direct_key(sender, recipient))
        history = self._live(key, self._direct_history, list)
        written, places, dropped = {key}, {}, []
        for user, partner in ((sender, recipient), (recipient, sender)):
            if user == SYSTEM:
                continue
            written.add(("inbox", user))
            inbox = self._live(("inbox", user), self._inboxes,
                               lambda: Inbox(self._history_size))
            message, gone = inbox.add(partner, envelope, incoming=user == recipient)
            dropped += gone
            places[user] = Place(message.offset, message.epoch)
        kept = replace(envelope, positions={u: p.offset for u, p in places.items()})
        history.append(kept)
        self._share(envelope, 1 + len(places))
        for copy in dropped + self._trim(history):
            self._unshare(copy)
        self._evict(written)
        return succeed((places, 0))

    def inbox_since(self, user, offset, epoch):
        inbox = self._live(("inbox", user), self._inboxes)
        return succeed(since(None, [], 0, "", 0) if inbox is None
                       else inbox.since(offset, epoch))

    def conversations(self, user, limit, before=0):
        inbox = self._live(("inbox", user), self._inboxes)
        return succeed([] if inbox is None else inbox.conversations(limit, before))

    def mark_read(self, user, partner, offset):
        inbox = self._live(("inbox", user), self._inboxes)
        return succeed(0 if inbox is None else inbox.mark_read(partner, offset))

    def _trim(self, history):
        """Keep the newest C{history_size} entries; the others, dropped."""
        dropped = history[: -self._history_size]
        del history[: -self._history_size]
        return dropped

    def _share(self, envelope, copies):
        """C{envelope} is kept in so many C{copies}: it weighs once, whatever their number."""
        shared = id(envelope.payload)
        held = self._copies.get(shared)
        if held is None:
            weight = _weight(envelope)
            self._copies[shared] = (copies, weight)
            self._bytes += weight
        else:
            self._copies[shared] = (held[0] + copies, held[1])

    def _unshare(self, copy):
        """One copy of a direct message is gone; with the last, its weight."""
        shared = id(copy.payload)
        left, weight = self._copies[shared]
        if left > 1:
            self._copies[shared] = (left - 1, weight)
        else:
            del self._copies[shared]
            self._bytes -= weight

    def _evict(self, written):
        """
        Past the budget, forget the streams last written longest ago (never
        those just C{written}) until back under it.
        """
        if self._max_bytes is None:
            return
        now = self._seconds()
        while self._bytes > self._max_bytes:
            oldest = next((key for key in self._expiry if key not in written), None)
            if oldest is None:
                return
            deadline = self._expiry[oldest]
            self._forget(oldest)
            if deadline > now:
                self.evictions.add(_KINDS[oldest[0]], now - (deadline - self._ttl))

    def _tell(self):
        self.evictions.tell(self._bytes, self._max_bytes)

    def full(self):
        """
        Never: every byte the budget counts is a stream's, and streams are
        evicted (the oldest first) rather than chat refused.
        """
        return False

    def direct_messages(self, user_a, user_b, limit):
        key = ("dm", direct_key(user_a, user_b))
        history = self._live(key, self._direct_history)
        inbox = self._live(("inbox", user_a), self._inboxes)
        epoch = inbox.numbering.epoch if inbox is not None else ""
        return succeed([
            numbered(message, Place(message.positions.get(user_a, 0), epoch))
            if message.positions else message
            for message in (history[-limit:] if limit > 0 else [])
        ])

    def _live(self, key, table, create=None):
        """
        The history under C{key}: empty if it expired. With C{create}, make
        it if needed and restart its time to live, as a write does.
        """
        now = self._seconds()
        if self._expiry.get(key, now + 1) <= now:
            self._forget(key)
        if create is None:
            return table.get(key, None if table is self._inboxes else [])
        self._expiry[key] = now + self._ttl
        self._expiry.move_to_end(key)
        return table.setdefault(key, create())

    def _forget(self, key):
        del self._expiry[key]
        for entry in self._room_history.pop(key, ()):
            self._bytes -= _weight(entry[1])
        for copy in self._direct_history.pop(key, ()):
            self._unshare(copy)
        inbox = self._inboxes.pop(key, None)
        if inbox is not None:
            for copy in inbox.messages:
                self._unshare(copy)
        self._numbering.pop(key, None)

    def expire(self):
        """
        Drop every history whose time to live has passed. When that was
        most of them, copy the tables: a dict keeps the room it once needed,
        and the memory of a flood should come back when the flood is gone.
        """
        now = self._seconds()
        self._budgets = {u: t for u, t in self._budgets.items() if t > now}
        gone = [key for key, deadline in self._expiry.items() if deadline <= now]
        for key in gone:
            self._forget(key)
        if len(gone) > len(self._expiry):
            self._expiry = OrderedDict(self._expiry)
            self._copies = dict(self._copies)
            self._room_history = dict(self._room_history)
            self._direct_history = dict(self._direct_history)
            self._inboxes = dict(self._inboxes)

    # Sessions

    def claim(self, user):
        rested_at = self._budgets.pop(user, 0)
        rested_in = rested_at - self._seconds() if rested_at > self._seconds() else None
        if user not in self._sessions:
            self._sessions.add(user)
            return succeed(Claim(None, None, (), rested_in))
        rooms = tuple(sorted(self._membership.rooms_of(user)))
        return succeed(Claim(self.node, self._end_session(user), rooms, rested_in))

    def release(self, user, rested_in=0):
        if user not in self._sessions:
            return succeed(None)
        self._sessions.discard(user)
        if rested_in > 0:
            self._budgets[user] = self._seconds() + rested_in
        return succeed(self._end_session(user))

    def _end_session(self, user):
        for room in list(self._membership.rooms_of(user)):
            self._membership.discard(room, user)
            self._rosters.discard(room, user)
        self._waiting.discard(user)
        self._pool.discard(user)
        return self._end_match(user)

    # Matchmaking

    def offer(self, user):
        if user in self._matches:
            self._waiting.add(user)
        else:
            self._pool.add(user)
        return succeed(None)

    def withdraw(self, user):
        self._waiting.discard(user)
        self._pool.discard(user)
        return succeed(None)

    def pair(self, requester, skipped):
        current = self._matches.get(requester)
        if current is not None:
            if current.peer != skipped:
                return succeed(Pairing(current))
            self._end_match(requester)
        peer = self._pool.choose({requester, skipped}, self._rng)
        if peer is None:
            return succeed(Pairing(None, skipped=current and current.peer))
        for user in (requester, peer):
            self._pool.discard(user)
            self._waiting.discard(user)
        self._matches[peer] = Match(requester, POLITE)
        mine = self._matches[requester] = Match(peer, IMPOLITE)
        return succeed(Pairing(mine, fresh=True, skipped=current and current.peer))

    def hang_up(self, user, peer):
        current = self._matches.get(user)
        if current is None or current.peer != peer:
            return succeed(False)
        self._end_match(user)
        return succeed(True)

    def _end_match(self, user):
        """End C{user}'s match; sides waiting for it enter the pool. The peer, or C{None}."""
        match = self._matches.pop(user, None)
        if match is None:
            return None
        del self._matches[match.peer]
        for side in (user, match.peer):
            if side in self._waiting:
                self._waiting.discard(side)
                self._pool.add(side)
        return match.peer

    def match_of(self, user):
        return succeed(self._matches.get(user))

    def pool_size(self):
        return succeed(len(self._pool))

    def ping(self):
        return succeed(None)


def _time_of(entry):
    return entry[0]


def _weight(envelope):
    """What a kept message weighs: its encoded size."""
    return len(encode(envelope))

"""
The Redis/Valkey store, on txredisapi, never blocking the reactor.

Keys are those of the Go server (README.rst, "Key layout") under an optional
prefix, so a deployment can switch servers on the same database. Every
operation that writes more than one thing is one Lua script: one round
trip, atomic. Commands go through L{Commands}, which fails them fast
while Redis is unreachable, times them out and bounds how many wait.
"""

import math
import random
import uuid
from typing import NamedTuple

from twisted.application.internet import TimerService
from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, DeferredLock
from twisted.logger import Logger
from zope.interface import implementer

from aleatoria.domain.evictions import KINDS, Evictions
from aleatoria.domain.matchmaking import Match, Pairing
from aleatoria.domain.ports import IStore, StoreUnavailable
from aleatoria.domain.values import Claim, Conversation, Place, Since, direct_key
from aleatoria.edge.wire import InvalidMessage, decode_stored, encode
from aleatoria.memory.inbox import new_epoch, numbered
from aleatoria.redis import scripts
from aleatoria.redis.connection import Commands

WEIGH_SECONDS = 5
"""How often a store with a byte quota asks Redis how much memory it uses."""
EVICT_BATCH = 100
"""Streams one eviction evicts at most, before Redis is weighed again."""

STAMPED_APART = 100
"""
Messages of other offsets a replay's time range may hold beside its own
(daemons' clocks a little apart stamp a stream out of the order of its
offsets); past them it reads no more, and the gap is not recovered.
"""


@implementer(IStore)
class RedisStore(MultiService):
    """
    The keys and scripts; the connection, and the rules that keep an
    outage cheap, are its L{Commands}'.

    @param endpoint: an L{IStreamClientEndpoint} to Redis (TLS-wrapped or not).
    @param where: C{host:port}, for log lines.
    @param ttl: seconds a history lives after its last write.
    @param history_size: messages kept per room and per pair.
    @param timeout: seconds before a command (or the connect handshake) is
        given up.
    @param retry_max: the longest wait between reconnection attempts.
    @param max_pending: commands that may wait for Redis at once.
    @param node: this daemon's id among those sharing the Redis (random).
    @param report: the daemon's L{aleatoria.reporting.Report}, which hears
        of the link going down (a warning) and up (a breadcrumb).
    @param max_bytes: what Redis's C{used_memory} may be: past it, the
        streams last written longest ago are evicted.
    """

    kind = "redis"
    _log = Logger()

    def __init__(self, endpoint, where, reactor, *, ttl, history_size, prefix="",
                 username=None, password=None, db=0, timeout=2.0, retry_max=1.0,
                 max_pending=10000, node=None, report=None, max_bytes=None):
        super().__init__()
        self._ttl = int(ttl)
        self._history_size = history_size
        self.prefix = prefix
        self.commands = Commands(endpoint, where, reactor, timeout=timeout,
                                 max_pending=max_pending, report=report, retry_max=retry_max,
                                 username=username, password=password, db=db)
        self.commands.setServiceParent(self)
        self.node = node or uuid.uuid4().hex
        self._rng = random.Random()
        self._max_bytes = max_bytes
        self._used = 0
        """
        Redis's used_memory when last weighed (every L{WEIGH_SECONDS}), less
        what it evicted then (freed in the background).
        """
        self._evictable = 0
        """Streams Redis keeps, when last weighed: what could be evicted."""
        self._weighing = DeferredLock()
        self._refusing = False
        self.evictions = Evictions()
        if max_bytes is not None:
            TimerService(WEIGH_SECONDS, self.weigh).setServiceParent(self)
            self.commands.watch(lambda up: self.weigh() if up else None)

    @property
    def connected(self):
        return self.commands.connected

    def full(self):
        """Whether Redis weighed more than the budget with no stream left to evict."""
        return (self._max_bytes is not None and self._used >= self._max_bytes
                and not self._evictable)

    def weigh(self):
        """
        How much memory Redis uses (history and all: C{INFO memory}); past
        the budget, evict the streams written longest ago, a batch at a
        time, weighing again after each, until under it or none is left.
        One weighing at a time.
        """
        d = self._weighing.run(lambda: Deferred.fromCoroutine(self._evict()))
        return d.addErrback(self._not_weighed)

    async def _evict(self):
        try:
            while True:
                reply = [int(value) for value in await self._library(
                    scripts.EVICT, self._max_bytes, EVICT_BATCH)]
                self._used, *evicted, self._evictable, age = reply
                for kind, count in zip(KINDS, evicted, strict=True):
                    self.evictions.add(kind, age / 1000, count)
                if self._used <= self._max_bytes or not self._evictable:
                    return
        finally:
            self.evictions.tell(self._used, self._max_bytes)
            self._tell_full()

    def _tell_full(self):
        """Say when chat begins to be refused for want of history to evict, and when it ends."""
        full = self.full()
        if full and not self._refusing:
            self._log.warn(
                "Redis uses {used} bytes, past --max-history-bytes ({budget}), with no "
                "history left to evict: chat is refused (quota_exceeded) until it is under",
                used=self._used, budget=self._max_bytes)
        elif self._refusing and not full:
            self._log.info("Redis is under --max-history-bytes again: chat is stored again")
        self._refusing = full

    def _not_weighed(self, failure):
        """An outage is told elsewhere; anything else is a bug to log. Weigh on, anyway."""
        if not failure.check(StoreUnavailable):
            self._log.failure("Weighing Redis failed", failure)

    @property
    def link(self):
        return self.commands.link

    def watch(self, watcher):
        """Call C{watcher(up)} each time the link to Redis opens or is lost."""
        self.commands.watch(watcher)

    def _key(self, *parts):
        return self.prefix + ":".join(parts)

    def _dm_key(self, user_a, user_b):
        """
        The Go server's C{dm:{a}:{b}}, with each ':' inside an id written
        C{%3A}: ids may hold ':' (the separator) but never '%', so no two
        pairs share a key. Ids without ':' keep the Go server's key.
        """
        return self._key("dm", *(user.replace(":", "%3A") for user in direct_key(user_a, user_b)))

    def _script(self, script, keys, args, capped=True):
        return self.commands.call("eval", script, keys, [_text(a) for a in args], capped=capped)

    def _library(self, script, *args, capped=True):
        """Run a script that builds its own keys from the prefix."""
        return self._script(script, [], [self.prefix, *args], capped=capped)

    def _envelopes(self, entries):
        envelopes = []
        for entry in entries:
            try:
                envelopes.append(decode_stored(entry.encode()))
            except InvalidMessage as e:
                self._log.warn("Skipped an unreadable stored message: {why}", why=e)
        return envelopes

    # Rooms

    def join_room(self, room, user):
        return self._script(scripts.JOIN, self._membership_keys(room, user), [user, room])

    def leave_room(self, room, user):
        return self._script(scripts.LEAVE, self._membership_keys(room, user), [user, room])

    def _membership_keys(self, room, user):
        return [self._key("room", "members", room), self._key("user", "rooms", user),
                self._key("rooms"), self._key("room", "live", room),
                self._key("presence", user)]

    def room_members(self, room, limit, after):
        """
        A page of C{room:live:{room}}: the members with a session, which
        every change of membership keeps (a dead daemon's leave it when
        they are reaped).
        """
        d = self._script(scripts.ROOM_MEMBERS, [self._key("room", "live", room)], [limit, after])
        return d.addCallback(_page, limit)

    def user_rooms(self, user):
        return self.commands.call("smembers", self._key("user", "rooms", user)).addCallback(sorted)

    def rooms(self, limit, after):
        d = self._library(scripts.ROOMS_PAGE, limit, after)
        return d.addCallback(lambda reply: (
            [(reply[i], int(reply[i + 1])) for i in range(1, len(reply), 2)], int(reply[0])))

    def whereabouts(self, user):
        return self._library(scripts.WHEREABOUTS, user).addCallback(lambda node: node or None)

    # History

    def save_room_message(self, room, envelope, at_ns, announce=None):
        """
        Number and keep C{envelope}; with C{announce} (an L{Announce}),
        publish it, numbered, in the same step -- so that every daemon
        hears a stream's messages in the order of their offsets. Fire with
        its L{Place} and how many live daemons were not listening.
        """
        channel, before, after = announce or ("", "", "")
        d = self._library(scripts.SAVE_ROOM, room, at_ns, encode(envelope).decode(),
                          self._history_size, self._ttl, new_epoch(), channel, before, after)
        return d.addCallback(lambda reply: (Place(int(reply[0]), _text(reply[1])),
                                            int(reply[2])))

    def room_messages(self, room, limit, before_ns=None):
        high = "+inf" if before_ns is None else f"({before_ns}"
        d = self.commands.call("execute_command", "ZREVRANGEBYSCORE",
                       self._key("room", "messages", room), high, "-inf",
                       "LIMIT", 0, limit)
        return d.addCallback(self._envelopes)

    def room_since(self, room, offset, epoch):
        """
        The room's L{Since}: L{scripts.ROOM_SINCE} says whether to read and
        which time range; of the kept messages in it, those of the gap.
        """
        d = self._library(scripts.ROOM_SINCE, room, offset, epoch, self._history_size)
        return d.addCallback(self._room_gap, room, offset, epoch)

    def _room_gap(self, reply, room, offset, epoch):
        if len(reply) < 4:
            return self._since(reply, offset, epoch)
        last = int(reply[1])
        d = self.commands.call("execute_command", "ZRANGEBYSCORE",
                               self._key("room", "messages", room), reply[2], reply[3],
                               "LIMIT", 0, last - offset + STAMPED_APART)
        return d.addCallback(lambda entries: self._since(reply[:2] + entries, offset, epoch))

    def _since(self, reply, offset, epoch):
        current, last = _text(reply[0]), int(reply[1])
        messages = sorted((m for m in self._envelopes(reply[2:])
                           if m.epoch == current and offset < m.offset <= last),
                          key=lambda m: m.offset)
        same = offset == 0 or epoch == current
        return Since(current, last, messages, same and len(messages) == max(0, last - offset))

    def save_direct_message(self, sender, recipient, envelope, announce=None):
        """
        Keep C{envelope} in the pair's history and number it into each
        party's inbox; with C{announce} (an L{Announce} whose channel is the
        prefix of the daemons' own), publish each party's copy to its
        daemon in the same step. Fire with the L{Place} in each inbox, and
        whether the recipient's daemon heard it (see L{scripts.STREAMS}).
        """
        channels, before, after = announce or ("", ("", ""), "")
        d = self._library(scripts.SAVE_DIRECT, sender, recipient, encode(envelope).decode(),
                          self._history_size, self._ttl, new_epoch(),
                          self._dm_key(sender, recipient), channels, *before, after)
        return d.addCallback(_places, sender, recipient)

    def direct_messages(self, user_a, user_b, limit):
        d = self._library(scripts.DIRECT_MESSAGES, user_a, self._dm_key(user_a, user_b), limit)
        return d.addCallback(self._read_by, user_a)

    def _read_by(self, reply, reader):
        epoch = _text(reply[0])
        return [numbered(m, Place(m.positions.get(reader, 0), epoch)) if m.positions else m
                for m in self._envelopes(reply[1:])]

    def inbox_since(self, user, offset, epoch):
        """The inbox's L{Since}: L{scripts.INBOX_SINCE} says whether to read."""
        d = self._library(scripts.INBOX_SINCE, user, offset, epoch, self._history_size)
        return d.addCallback(self._inbox_gap, user, offset, epoch)

    def _inbox_gap(self, reply, user, offset, epoch):
        if len(reply) < 3:
            return self._since(reply, offset, epoch)
        d = self.commands.call("execute_command", "ZRANGEBYSCORE",
                               self._key("inbox", user.replace(":", "%3A")), f"({offset}",
                               "+inf")
        return d.addCallback(lambda entries: self._since(reply[:2] + entries, offset, epoch))

    def conversations(self, user, limit, before=0):
        d = self._library(scripts.CONVERSATIONS, user, limit, before)
        return d.addCallback(self._conversations)

    def _conversations(self, reply):
        found = []
        for i in range(0, len(reply), 3):
            last = self._envelopes([reply[i + 1]]) if reply[i + 1] else []
            if last:
                found.append(Conversation(_text(reply[i]), last[0], int(reply[i + 2])))
        return found

    def mark_read(self, user, partner, offset):
        d = self._library(scripts.MARK_READ, user, partner, offset)
        return d.addCallback(int)

    # Sessions

    def claim(self, user):
        d = self._library(scripts.CLAIM, user, self.node, capped=False)
        return d.addCallback(lambda reply: Claim(
            reply[0], reply[1], tuple(sorted(reply[3:])),
            int(reply[2]) / 1000 if int(reply[2]) > 0 else None,
        ))

    def release(self, user, rested_in=0):
        d = self._library(scripts.RELEASE, user, self.node, math.ceil(rested_in * 1000),
                          capped=False)
        return d.addCallback(lambda peer: peer or None)

    # Matchmaking

    def offer(self, user):
        return self._library(scripts.OFFER, user)

    def withdraw(self, user):
        return self._library(scripts.WITHDRAW, user)

    def pair(self, requester, skipped):
        d = self._library(scripts.PAIR, requester, skipped, self._rng.randrange(1 << 30))
        return d.addCallback(_pairing)

    def hang_up(self, user, peer):
        return self._library(scripts.HANG_UP, user, peer).addCallback(bool)

    def match_of(self, user):
        d = self.commands.call("hmget", self._key("match", user), ["peer", "role"])
        return d.addCallback(lambda reply: Match(*reply) if reply[0] else None)

    def pool_size(self):
        return self.commands.call("scard", self._key("available", "webrtc"))

    # For the peers (aleatoria.peers.redis), which own liveness

    def run(self, script, *args, capped=True):
        """
        Run one of L{scripts} that build their keys from the prefix (given
        as ARGV[1], before C{args}).
        """
        return self._library(script, *args, capped=capped)

    def publish(self, channel, post):
        return self.commands.call("publish", self.prefix + channel, post)

    def ping(self):
        return self.commands.call("ping")


class Announce(NamedTuple):
    """
    How a save publishes what it kept: on C{channel}, the numbered message
    between C{before} and C{after} (for a direct message, C{channel} is the
    prefix of the daemons' channels and C{before} a pair: the sender's
    post, the recipient's).
    """

    channel: str
    before: object
    after: str


def _places(reply, sender, recipient):
    places = {recipient: Place(int(reply[2]), _text(reply[3]))}
    if int(reply[0]):
        places[sender] = Place(int(reply[0]), _text(reply[1]))
    return places, int(reply[4])


def _page(reply, limit):
    """A page of members (see L{scripts.ROOM_MEMBERS}): the page, the count, the next cursor."""
    page = reply[1 : limit + 1]
    return page, int(reply[0]), page[-1] if len(reply) > limit + 1 else None


def _pairing(reply):
    outcome, peer, role, skipped = reply
    match = Match(peer, role) if peer else None
    return Pairing(match, fresh=outcome == "fresh", skipped=skipped or None)


def _text(value):
    """A script argument as Redis takes it: text."""
    return value.decode() if isinstance(value, bytes) else str(value)

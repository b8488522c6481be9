"""
The streams of the Redis backend: each room's history (the Go server's
C{room:messages:{room}}), each pair's (C{dm:{a}:{b}}) and each user's
inbox, numbered and kept -- and handed to every daemon that must hear
them, in the same script that keeps them, so that every daemon hears a
stream in the order of its offsets.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from zope.interface import implementer

from aleatoria.domain.delivery import Numbered
from aleatoria.domain.events import DirectMessage, RoomMessage
from aleatoria.domain.ports import IStreams
from aleatoria.domain.rules import SYSTEM
from aleatoria.domain.safety import write_refused
from aleatoria.domain.values import Conversation, Posted, Since, new_epoch
from aleatoria.redis import codec
from aleatoria.redis.budget import Budget
from aleatoria.redis.bus import RedisBus
from aleatoria.redis.connection import CommandLink, Reply
from aleatoria.redis.keys import Keys

STAMPED_APART = 100
"""
Messages of other offsets a replay's time range may hold beside its own
(daemons' clocks a little apart stamp a stream out of the order of its
offsets); past them it reads no more, and the gap is not recovered.
"""


@implementer(IStreams)
class RedisStreams:
    """
    @param commands: the L{aleatoria.redis.connection.CommandLink}.
    @param keys: the L{aleatoria.redis.keys.Keys}.
    @param bus: the L{aleatoria.redis.bus.RedisBus}: whether this daemon
        hears what the scripts tell, and its hand-over when it does not.
    @param ttl: seconds a history lives after its last write.
    @param history_size: messages kept per room and per pair.
    @param budget: the L{aleatoria.redis.budget.Budget} of what Redis keeps.
    """

    _log = Logger()

    def __init__(self, commands: CommandLink, keys: Keys, bus: RedisBus, *, ttl: float,
                 history_size: int, budget: Budget) -> None:
        self._commands = commands
        self._keys = keys
        self._bus = bus
        self._ttl = int(ttl)
        self._size = history_size
        self._budget = budget
        self._rng = random.Random()

    def full(self) -> bool:
        return self._budget.full()

    def _fresh_epoch(self) -> str:
        """
        An epoch of the primary's era (L{aleatoria.redis.link.Link.era}), for
        a stream that begins again: one of another era may have lost its
        tail in a failover or restart (lua/streams.lua).
        """
        return f"{self._commands.era}.{new_epoch()}"

    # Rooms

    def post_room(self, message: RoomMessage, at_ns: int) -> Deferred[Posted]:
        """
        Number and keep C{message}, and tell every daemon, in one script;
        fire with whether a live daemon was not listening.
        """
        bus = self._bus
        head, middle, tail = codec.kept_parts(message)
        d = self._commands.run(
            "save_room", message.room, at_ns, head, middle, tail, self._size, self._ttl,
            self._fresh_epoch(), codec.post_head("stream", bus.node),
            f" {message.room}\n{codec.push_bytes(message)}")

        def kept(reply: Reply) -> Posted:
            offset, epoch, deaf = int(reply[0]), _text(reply[1]), int(reply[2])
            if not bus.subscribed:
                bus.hand_room(message, offset, epoch)
                deaf -= 1
            return Posted(missed=deaf > 0)

        return d.addCallback(kept)

    def room_history(self, room: str, limit: int,
                     before_ns: int | None = None) -> Deferred[list[RoomMessage]]:
        high = "+inf" if before_ns is None else f"({before_ns}"
        d = self._commands.call("execute_command", "ZREVRANGEBYSCORE",
                                self._keys("room_messages", room), high, "-inf",
                                "LIMIT", 0, limit)
        return d.addCallback(codec.room_messages)

    def room_since(self, room: str, offset: int, epoch: str) -> Deferred[Since]:
        """
        The room's L{Since}: the script says whether to read and which
        time range; of the kept messages in it, those of the gap.
        """
        d = self._commands.run("room_since", room, offset, epoch, self._size,
                               self._fresh_epoch())
        return d.addCallback(self._room_gap, room, offset, epoch)

    def _room_gap(self, reply: Reply, room: str, offset: int,
                  epoch: str) -> Since | Deferred[Since]:
        if len(reply) < 4:
            return _since(reply, [], offset, epoch)
        last = int(reply[1])
        d = self._commands.call("execute_command", "ZRANGEBYSCORE",
                                self._keys("room_messages", room), reply[2], reply[3],
                                "LIMIT", 0, last - offset + STAMPED_APART)
        return d.addCallback(lambda entries: _since(reply, codec.room_messages(entries),
                                                    offset, epoch))

    # Direct messages

    def post_direct(self, message: DirectMessage) -> Deferred[Posted]:
        """
        Keep C{message} in the pair's history and number it into each
        party's inbox, and tell each party's daemon its copy, in one
        script; fire with whether the recipient is online anywhere.
        """
        bus = self._bus
        sender, recipient = message.sender, message.recipient
        head, middle, tail = codec.kept_parts(message)
        d = self._commands.run(
            "save_direct", sender, recipient, head, middle, tail, self._size, self._ttl,
            self._fresh_epoch(), self._keys.dm(sender, recipient),
            *codec.pair_parts(message, sender != SYSTEM),
            codec.post_head("inbox", bus.node), "\n" + codec.push_bytes(message))

        def kept(reply: Reply) -> Posted:
            if len(reply) == 1:
                raise write_refused(recipient)
            delivery = int(reply[4])
            if not bus.subscribed:
                places = [(recipient, int(reply[2]), _text(reply[3]))]
                if int(reply[0]):
                    places.append((sender, int(reply[0]), _text(reply[1])))
                for user, offset, epoch in places:
                    here = bus.hand_inbox(user, message, offset, epoch)
                    if here and user == recipient:
                        delivery = 1
            return Posted(missed=delivery < 0, online=delivery != 0)

        return d.addCallback(kept)

    def direct_history(self, reader: str, other: str, limit: int) -> Deferred[list[DirectMessage]]:
        d = self._commands.run("direct_messages", reader, self._keys.dm(reader, other), limit)
        return d.addCallback(lambda reply: codec.direct_messages(reply[1:], reader,
                                                                 _text(reply[0])))

    def inbox_since(self, user: str, offset: int, epoch: str) -> Deferred[Since]:
        """The inbox's L{Since}: the script says whether to read."""
        d = self._commands.run("inbox_since", user, offset, epoch, self._size,
                               self._fresh_epoch())
        return d.addCallback(self._inbox_gap, user, offset, epoch)

    def _inbox_gap(self, reply: Reply, user: str, offset: int,
                   epoch: str) -> Since | Deferred[Since]:
        if len(reply) < 3:
            return _since(reply, [], offset, epoch)
        d = self._commands.call("execute_command", "ZRANGEBYSCORE", self._keys("inbox", user),
                                f"({offset}", "+inf")
        return d.addCallback(lambda entries: _since(reply, codec.direct_messages(entries),
                                                    offset, epoch))

    def conversations(self, user: str, limit: int, before: int = 0) -> Deferred[list[Conversation]]:
        d = self._commands.run("conversations", user, limit, before)
        return d.addCallback(_conversations)

    def mark_read(self, user: str, partner: str, offset: int) -> Deferred[int]:
        return self._commands.run("mark_read", user, partner, offset).addCallback(int)


def _since(reply: Reply, messages: Iterable[Numbered], offset: int, epoch: str) -> Since:
    current, last = _text(reply[0]), int(reply[1])
    messages = sorted((m for m in messages if m.epoch == current and offset < m.offset <= last),
                      key=lambda m: m.offset)
    same = offset == 0 or epoch == current
    return Since(current, last, messages, same and len(messages) == max(0, last - offset))


def _conversations(reply: Reply) -> list[Conversation]:
    found: list[Conversation] = []
    for i in range(0, len(reply), 3):
        last = codec.direct_messages([reply[i + 1]]) if reply[i + 1] else []
        if last:
            found.append(Conversation(_text(reply[i]), last[0], int(reply[i + 2])))
    return found


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)

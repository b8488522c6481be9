"""
The streams of the embedded backend: each room's history and each
user's inbox, numbered, capped per stream, expiring C{ttl} seconds after
their last write -- and, past C{max_bytes}, the streams last written
longest ago evicted. One process, one order: a message is numbered, kept
and handed to this daemon's receiver in one step.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import OrderedDict
from collections.abc import Callable, Container
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import msgspec
from twisted.internet.defer import Deferred, fail, succeed
from zope.interface import implementer

from aleatoria.domain.events import DirectMessage, RoomMessage
from aleatoria.domain.evictions import Evictions
from aleatoria.domain.limits import Seconds
from aleatoria.domain.ports import IStreams
from aleatoria.domain.rules import SYSTEM
from aleatoria.domain.safety import write_refused
from aleatoria.domain.values import Conversation, Place, Posted, Since, direct_key
from aleatoria.memory.bus import LoneBus
from aleatoria.memory.inbox import Inbox, Numbering, numbered, since

if TYPE_CHECKING:
    from aleatoria.memory.blocks import MemoryBlocks

_T = TypeVar("_T")

_Key = tuple[str, str | tuple[str, str]]
"""A stream: C{("room", room)}, C{("dm", (user, user))} or C{("inbox", user)}."""

_KINDS = {"room": "room", "dm": "direct", "inbox": "inbox"}
_encode = msgspec.json.Encoder().encode


class _Kept(NamedTuple):
    """A direct message in its pair's history, and its offset in each party's inbox."""

    message: DirectMessage
    positions: dict[str, int]


@implementer(IStreams)
class MemoryStreams:
    """
    @param bus: the L{aleatoria.memory.bus.LoneBus}, which hands what is
        posted to this daemon's receiver.
    @param seconds: the clock.
    @param ttl: seconds a history lives after its last write.
    @param history_size: messages kept per room and per conversation.
    @param max_bytes: what kept messages may weigh, encoded (a direct
        message once, though the pair's history and each inbox keep it).
    @ivar blocks: the L{aleatoria.memory.blocks.MemoryBlocks} direct
        messages honour.
    """

    def __init__(self, bus: LoneBus, seconds: Seconds, ttl: int, history_size: int,
                 max_bytes: int | None = None) -> None:
        self._bus = bus
        self._seconds = seconds
        self._ttl = ttl
        self._history_size = history_size
        self._max_bytes = max_bytes
        self._room_history: dict[_Key, list[tuple[int, RoomMessage]]] = {}
        self._direct_history: dict[_Key, list[_Kept]] = {}
        self._inboxes: dict[_Key, Inbox] = {}
        self._numbering: dict[_Key, Numbering] = {}
        """Each room's stream numbering (an inbox numbers its own)."""
        self._expiry: OrderedDict[_Key, float] = OrderedDict()
        """Each stream's deadline, in the order of their last write."""
        self.bytes = 0
        """What the kept messages weigh, encoded."""
        self._copies: dict[tuple[str, str], tuple[int, int]] = {}
        """Per direct message kept: the copies left and what it weighs, counted once."""
        self.evictions = Evictions()
        self.blocks: MemoryBlocks = None  # type: ignore[assignment]  # the backend sets it

    # Rooms

    def post_room(self, message: RoomMessage, at_ns: int) -> Deferred[Posted]:
        key = ("room", message.room)
        history = self._live(key, self._room_history, list)
        numbering = self._numbering.setdefault(key, Numbering())
        message = numbered(message, numbering.next())
        insort(history, (at_ns, message), key=_time_of)
        self.bytes += _weight(message)
        for _, dropped in self._trim(history):
            self.bytes -= _weight(dropped)
        self._evict({key})
        self._bus.hand_room(message)
        return succeed(Posted())

    def room_history(self, room: str, limit: int,
                     before_ns: int | None = None) -> Deferred[list[RoomMessage]]:
        history = self._live(("room", room), self._room_history)
        end = len(history) if before_ns is None else bisect_left(history, before_ns,
                                                                  key=_time_of)
        page = history[max(0, end - limit):end]
        return succeed([message for _, message in reversed(page)])

    def room_since(self, room: str, offset: int, epoch: str) -> Deferred[Since]:
        key = ("room", room)
        history = self._live(key, self._room_history)
        return succeed(since(self._numbering.get(key), (m for _, m in reversed(history)),
                             offset, epoch, self._history_size))

    # Direct messages

    def post_direct(self, message: DirectMessage) -> Deferred[Posted]:
        sender, recipient = message.sender, message.recipient
        if self.blocks.blocks(sender, recipient):
            return fail(write_refused(recipient))
        key = ("dm", direct_key(sender, recipient))
        history = self._live(key, self._direct_history, list)
        written: set[_Key] = {key}
        numbered_for: dict[str, DirectMessage] = {}
        dropped: list[DirectMessage] = []
        for user, partner in ((sender, recipient), (recipient, sender)):
            if user == SYSTEM:
                continue
            written.add(("inbox", user))
            inbox = self._live(("inbox", user), self._inboxes,
                               lambda: Inbox(self._history_size))
            copy, gone = inbox.add(partner, message, incoming=user == recipient)
            dropped += gone
            numbered_for[user] = copy
        history.append(_Kept(message, {u: m.offset for u, m in numbered_for.items()}))
        self._share(message, 1 + len(numbered_for))
        for copy in dropped + [kept.message for kept in self._trim(history)]:
            self._unshare(copy)
        self._evict(written)
        online = False
        for user, copy in numbered_for.items():
            here = self._bus.hand_inbox(user, copy)
            online = online or (here and user == recipient)
        return succeed(Posted(online=online))

    def direct_history(self, reader: str, other: str, limit: int) -> Deferred[list[DirectMessage]]:
        history = self._live(("dm", direct_key(reader, other)), self._direct_history)
        inbox = self._live(("inbox", reader), self._inboxes)
        epoch = inbox.numbering.epoch if inbox is not None else ""
        return succeed([
            numbered(kept.message, Place(kept.positions[reader], epoch))
            if reader in kept.positions else kept.message
            for kept in (history[-limit:] if limit > 0 else [])
        ])

    def inbox_since(self, user: str, offset: int, epoch: str) -> Deferred[Since]:
        inbox = self._live(("inbox", user), self._inboxes)
        return succeed(since(None, [], 0, "", 0) if inbox is None
                       else inbox.since(offset, epoch))

    def conversations(self, user: str, limit: int, before: int = 0) -> Deferred[list[Conversation]]:
        inbox = self._live(("inbox", user), self._inboxes)
        return succeed([] if inbox is None else inbox.conversations(limit, before))

    def mark_read(self, user: str, partner: str, offset: int) -> Deferred[int]:
        inbox = self._live(("inbox", user), self._inboxes)
        return succeed(0 if inbox is None else inbox.mark_read(partner, offset))

    # What is kept

    def full(self) -> bool:
        """
        Never: every byte the budget counts is a stream's, and streams are
        evicted (the oldest first) rather than chat refused.
        """
        return False

    def _trim(self, history: list[_T]) -> list[_T]:
        """Keep the newest C{history_size} entries; the others, dropped."""
        dropped = history[:-self._history_size]
        del history[:-self._history_size]
        return dropped

    def _share(self, message: DirectMessage, copies: int) -> None:
        """C{message} is kept in so many C{copies}: it weighs once, whatever their number."""
        shared = (message.sender, message.create_time)
        held = self._copies.get(shared)
        if held is None:
            weight = _weight(message)
            self._copies[shared] = (copies, weight)
            self.bytes += weight
        else:
            self._copies[shared] = (held[0] + copies, held[1])

    def _unshare(self, copy: DirectMessage) -> None:
        """One copy of a direct message is gone; with the last, its weight."""
        shared = (copy.sender, copy.create_time)
        left, weight = self._copies[shared]
        if left > 1:
            self._copies[shared] = (left - 1, weight)
        else:
            del self._copies[shared]
            self.bytes -= weight

    def _evict(self, written: Container[_Key]) -> None:
        """
        Past the budget, forget the streams last written longest ago (never
        those just C{written}) until back under it.
        """
        if self._max_bytes is None:
            return
        now = self._seconds()
        while self.bytes > self._max_bytes:
            oldest = next((key for key in self._expiry if key not in written), None)
            if oldest is None:
                return
            deadline = self._expiry[oldest]
            self._forget(oldest)
            if deadline > now:
                self.evictions.add(_KINDS[oldest[0]], now - (deadline - self._ttl))

    def tell_evictions(self) -> None:
        self.evictions.tell(self.bytes, self._max_bytes)  # type: ignore[arg-type]  # timed only with one

    def _live(self, key: _Key, table: dict[_Key, Any],
              create: Callable[[], Any] | None = None) -> Any:
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

    def _forget(self, key: _Key) -> None:
        del self._expiry[key]
        for _, message in self._room_history.pop(key, ()):
            self.bytes -= _weight(message)
        for kept in self._direct_history.pop(key, ()):
            self._unshare(kept.message)
        inbox = self._inboxes.pop(key, None)
        if inbox is not None:
            for copy in inbox.messages:
                self._unshare(copy)
        self._numbering.pop(key, None)

    def expire(self) -> None:
        """
        Drop every history whose time to live has passed. When that was
        most of them, copy the tables: a dict keeps the room it once needed,
        and the memory of a flood should come back when the flood is gone.
        """
        now = self._seconds()
        gone = [key for key, deadline in self._expiry.items() if deadline <= now]
        for key in gone:
            self._forget(key)
        if len(gone) > len(self._expiry):
            self._expiry = OrderedDict(self._expiry)
            self._copies = dict(self._copies)
            self._room_history = dict(self._room_history)
            self._direct_history = dict(self._direct_history)
            self._inboxes = dict(self._inboxes)


def _time_of(entry: tuple[int, RoomMessage]) -> int:
    return entry[0]


def _weight(message: RoomMessage | DirectMessage) -> int:
    """What a kept message weighs: its encoded size."""
    return len(_encode(message))


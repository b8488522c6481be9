"""
Streams as the memory store keeps them: the numbering every stream has
(an epoch and the last offset), and a user's inbox -- every direct
message to or from the user, numbered, with the user's conversations and
what is unread in each.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from typing import TypeVar

from msgspec.structs import replace

from aleatoria.domain.delivery import Numbered
from aleatoria.domain.events import DirectMessage, RoomMessage
from aleatoria.domain.values import Conversation, Place, Since, new_epoch

_M = TypeVar("_M", RoomMessage, DirectMessage)


class Numbering:
    """A stream's epoch and its last offset."""

    def __init__(self) -> None:
        self.epoch = new_epoch()
        self.last = 0

    def next(self) -> Place:
        self.last += 1
        return Place(self.last, self.epoch)


def numbered(message: _M, place: Place) -> _M:
    """C{message} as its stream numbers it."""
    return replace(message, offset=place.offset, epoch=place.epoch)


def replayable(offset: int, epoch: str, numbering: Numbering, kept: int) -> bool:
    """
    Whether a client at C{offset} of C{epoch} may have all it missed of a
    stream numbered by C{numbering} that keeps its C{kept} newest messages:
    the same epoch (offset 0 asks for all there is, of any), an offset
    before the last, a gap within what is kept. Only then is anything read.
    """
    return ((offset == 0 or epoch == numbering.epoch) and offset < numbering.last
            and numbering.last - offset <= kept)


def since(numbering: Numbering | None, newest_first: Iterable[Numbered], offset: int, epoch: str,
          kept: int) -> Since:
    """
    L{Since} C{offset} of C{epoch}, of a stream numbered by C{numbering} (or
    none yet) that keeps its C{kept} newest messages, C{newest_first}
    (numbered messages): read back only to the offset, and only if
    L{replayable}.
    """
    if numbering is None:
        return Since("", 0, [], True)
    after: list[Numbered] = []
    if replayable(offset, epoch, numbering, kept):
        for message in newest_first:
            if message.offset <= offset:
                break
            after.append(message)
        after.reverse()
    same = offset == 0 or epoch == numbering.epoch
    return Since(numbering.epoch, numbering.last, after,
                 same and len(after) == max(0, numbering.last - offset))


class Inbox:
    """
    One user's inbox: its numbered messages (the newest C{size}), the
    last message of each conversation (the newest C{size} conversations,
    in the order of their last message), the unread count of each, and the
    offsets of each partner's messages not marked read (its newest C{size}).
    """

    def __init__(self, size: int) -> None:
        self.numbering = Numbering()
        self.messages: list[DirectMessage] = []
        self._size = size
        self._latest: dict[str, DirectMessage] = {}
        self._unread: dict[str, int] = {}
        self._incoming: dict[str, list[int]] = {}

    def add(self, partner: str, message: DirectMessage,
            incoming: bool) -> tuple[DirectMessage, list[DirectMessage]]:
        """Number C{message} into the inbox; it, and the messages no longer kept."""
        copy = numbered(message, self.numbering.next())
        self.messages.append(copy)
        self._latest.pop(partner, None)
        self._latest[partner] = copy
        if incoming:
            self._unread[partner] = self._unread.get(partner, 0) + 1
            heard = self._incoming.setdefault(partner, [])
            heard.append(copy.offset)
            del heard[:-self._size]
        while len(self._latest) > self._size:
            oldest = next(iter(self._latest))
            del self._latest[oldest]
            self._unread.pop(oldest, None)
            self._incoming.pop(oldest, None)
        dropped = self.messages[:-self._size]
        del self.messages[:-self._size]
        return copy, dropped

    def since(self, offset: int, epoch: str) -> Since:
        return since(self.numbering, reversed(self.messages), offset, epoch, self._size)

    def conversations(self, limit: int, before: int) -> list[Conversation]:
        """Up to C{limit} conversations, the most recent first, those before offset C{before}."""
        found: list[Conversation] = []
        for partner, last in reversed(self._latest.items()):
            if before and last.offset >= before:
                continue
            found.append(Conversation(partner, last, self._unread.get(partner, 0)))
            if len(found) == limit:
                break
        return found

    def mark_read(self, partner: str, upto: int) -> int:
        """
        C{partner}'s messages up to offset C{upto} are read: what is left
        unread from it (never more than it was), costing what it marks.
        """
        if partner not in self._unread:
            return 0
        heard = self._incoming.get(partner, [])
        del heard[:bisect_right(heard, upto)]
        self._unread[partner] = min(self._unread[partner], len(heard))
        if not self._unread[partner]:
            del self._unread[partner]
            self._incoming.pop(partner, None)
        return self._unread.get(partner, 0)

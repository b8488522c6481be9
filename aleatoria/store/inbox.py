"""
Streams as the memory store keeps them: the numbering every stream has
(an epoch and the last offset), and a user's inbox -- every direct
message to or from the user, numbered, with the user's conversations and
what is unread in each.
"""

import secrets

from msgspec import UNSET
from msgspec.structs import replace

from . import Conversation, Place, Since


def new_epoch():
    """A fresh epoch: what tells a stream from one that was lost and begun again."""
    return secrets.token_hex(4)


class Numbering:
    """A stream's epoch and its last offset."""

    def __init__(self):
        self.epoch = new_epoch()
        self.last = 0

    def next(self):
        self.last += 1
        return Place(self.last, self.epoch)


def numbered(envelope, place):
    """C{envelope} as its stream numbers it."""
    return replace(envelope, offset=place.offset, epoch=place.epoch, positions=UNSET)


def since(numbering, entries, offset):
    """
    L{Since} C{offset}, of a stream numbered by C{numbering} (or none yet)
    whose kept C{entries} are numbered envelopes, oldest first.
    """
    if numbering is None:
        return Since("", 0, [], True)
    after = []
    for envelope in reversed(entries):
        if envelope.offset <= offset:
            break
        after.append(envelope)
    after.reverse()
    return Since(numbering.epoch, numbering.last, after,
                 len(after) == max(0, numbering.last - offset))


class Inbox:
    """
    One user's inbox: its numbered messages (the newest C{size}), the
    last message of each conversation (the newest C{size} conversations,
    in the order of their last message) and the unread count of each.
    """

    def __init__(self, size):
        self.numbering = Numbering()
        self.messages = []
        self._size = size
        self._latest = {}
        self._unread = {}

    def add(self, partner, envelope, incoming):
        """Number C{envelope} into the inbox; it, and the messages no longer kept."""
        message = numbered(envelope, self.numbering.next())
        self.messages.append(message)
        self._latest.pop(partner, None)
        self._latest[partner] = message
        if incoming:
            self._unread[partner] = self._unread.get(partner, 0) + 1
        while len(self._latest) > self._size:
            oldest = next(iter(self._latest))
            del self._latest[oldest]
            self._unread.pop(oldest, None)
        dropped = self.messages[:-self._size]
        del self.messages[:-self._size]
        return message, dropped

    def since(self, offset):
        return since(self.numbering, self.messages, offset)

    def conversations(self, limit, before):
        """Up to C{limit} conversations, the most recent first, those before offset C{before}."""
        found = []
        for partner, last in reversed(self._latest.items()):
            if before and last.offset >= before:
                continue
            found.append(Conversation(partner, last, self._unread.get(partner, 0)))
            if len(found) == limit:
                break
        return found

    def mark_read(self, partner, unread):
        """What is unread from C{partner} is now C{unread} (never more than it was)."""
        if partner in self._unread:
            self._unread[partner] = min(self._unread[partner], unread)
            if not self._unread[partner]:
                del self._unread[partner]
        return self._unread.get(partner, 0)

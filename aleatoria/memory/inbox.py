"""
Streams as the memory store keeps them: the numbering every stream has
(an epoch and the last offset), and a user's inbox -- every direct
message to or from the user, numbered, with the user's conversations and
what is unread in each.
"""

from bisect import bisect_right

from msgspec.structs import replace

from aleatoria.domain.values import Conversation, Place, Since, new_epoch


class Numbering:
    """A stream's epoch and its last offset."""

    def __init__(self):
        self.epoch = new_epoch()
        self.last = 0

    def next(self):
        self.last += 1
        return Place(self.last, self.epoch)


def numbered(message, place):
    """C{message} as its stream numbers it."""
    return replace(message, offset=place.offset, epoch=place.epoch)


def replayable(offset, epoch, numbering, kept):
    """
    Whether a client at C{offset} of C{epoch} may have all it missed of a
    stream numbered by C{numbering} that keeps its C{kept} newest messages:
    the same epoch (offset 0 asks for all there is, of any), an offset
    before the last, a gap within what is kept. Only then is anything read.
    """
    return ((offset == 0 or epoch == numbering.epoch) and offset < numbering.last
            and numbering.last - offset <= kept)


def since(numbering, newest_first, offset, epoch, kept):
    """
    L{Since} C{offset} of C{epoch}, of a stream numbered by C{numbering} (or
    none yet) that keeps its C{kept} newest messages, C{newest_first}
    (numbered messages): read back only to the offset, and only if
    L{replayable}.
    """
    if numbering is None:
        return Since("", 0, [], True)
    after = []
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

    def __init__(self, size):
        self.numbering = Numbering()
        self.messages = []
        self._size = size
        self._latest = {}
        self._unread = {}
        self._incoming = {}

    def add(self, partner, message, incoming):
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

    def since(self, offset, epoch):
        return since(self.numbering, reversed(self.messages), offset, epoch, self._size)

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

    def mark_read(self, partner, upto):
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

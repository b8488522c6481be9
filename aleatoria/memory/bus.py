"""
The bus of a daemon alone: nobody is anywhere else, everybody here hears
everything. What a stream keeps is handed to this daemon's receiver at
once -- one process, one order.
"""

from twisted.internet.defer import succeed
from zope.interface import implementer

from aleatoria.domain.ports import IBus


@implementer(IBus)
class LoneBus:
    node = "local"
    subscribed = True

    def __init__(self):
        self._receiver = None

    def listen(self, receiver):
        self._receiver = receiver

    def hand_room(self, message):
        """A numbered room message, kept: to its members here."""
        self._receiver.room_post(message)

    def hand_inbox(self, user, message):
        """A numbered message of C{user}'s inbox, kept: to the user if here; whether it is."""
        return self._receiver.inbox_post(user, message)

    def deliver(self, user, push):
        return succeed(False)

    def broadcast(self, room, push):
        return succeed(None)

    def replaced(self, owner, user):
        pass

    def kick(self, user, reason):
        return succeed(False)

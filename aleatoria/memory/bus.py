"""
The bus of a daemon alone: nobody is anywhere else, everybody here hears
everything. What a stream keeps is handed to this daemon's receiver at
once -- one process, one order.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred, succeed
from zope.interface import implementer

from aleatoria.domain.events import DirectMessage, MemberJoined, MemberLeft, Push, RoomMessage
from aleatoria.domain.ports import IBus, IReceiver


@implementer(IBus)
class LoneBus:
    node = "local"
    subscribed = True

    def __init__(self) -> None:
        self._receiver: IReceiver = None  # type: ignore[assignment]  # until listen()

    def listen(self, receiver: IReceiver) -> None:
        self._receiver = receiver

    def hand_room(self, message: RoomMessage) -> None:
        """A numbered room message, kept: to its members here."""
        self._receiver.room_post(message)

    def hand_inbox(self, user: str, message: DirectMessage) -> bool:
        """A numbered message of C{user}'s inbox, kept: to the user if here; whether it is."""
        return self._receiver.inbox_post(user, message)

    def deliver(self, user: str, push: Push) -> Deferred[bool]:
        return succeed(False)

    def broadcast(self, room: str, push: MemberJoined | MemberLeft) -> Deferred[None]:
        return succeed(None)

    def replaced(self, owner: str, user: str) -> None:
        pass

    def kick(self, user: str, reason: str) -> Deferred[bool]:
        return succeed(False)

"""
Chat messages: what every one needs (content, size, a user or a room,
the sender's shares), stamped once and handed to its stream -- a room's,
or the two inboxes of a direct message -- and, once its outcome is known,
its sender told what failed, before its echo.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgspec
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from aleatoria.domain.clock import format_ns
from aleatoria.domain.events import DirectMessage, PostFailed, RoomMessage, RoomPosted
from aleatoria.domain.limits import OverQuota, Quotas
from aleatoria.domain.ports import IConnection, IStreams
from aleatoria.domain.refusals import Invalid, NotInRoom, QuotaExceeded, Unavailable
from aleatoria.domain.rooms import NOT_IN_ROOM
from aleatoria.domain.rules import MAX_MESSAGE_ID, check_content, check_user
from aleatoria.domain.values import Posted
from aleatoria.domain.work import FAILED, Failed

if TYPE_CHECKING:
    from aleatoria.domain.hub import Hub

_MISSED = {"delivery": "delivered to everyone", "history": "saved to history"}

_SHORT = {
    ("user", "conversations"): "You have started as many conversations as you may this "
                               "hour; write to someone you wrote to lately, or wait.",
    ("user", "messages"): "You have sent as many messages as may be kept for you this "
                          "hour; wait before sending more.",
    ("user", "bytes"): "You have sent as much text as may be kept for you this hour; "
                       "wait before sending more.",
    ("address", "conversations"): "The users of your address have started as many "
                                  "conversations as they may this hour; write to someone "
                                  "you wrote to lately, or wait.",
    ("address", "messages"): "The users of your address have sent as many messages as may "
                             "be kept for them this hour; wait before sending more.",
    ("address", "bytes"): "The users of your address have sent as much text as may be kept "
                          "for them this hour; wait before sending more.",
}
"""What a client is told when a share (L{aleatoria.domain.limits.Shares}) is used up."""

_weigh = msgspec.json.Encoder().encode


@dataclass(frozen=True)
class Outcome:
    """What became of a chat message: what may have failed, and if the addressee is online."""

    failed: list[str]
    online: bool = True


class Chat:
    """
    @param hub: the L{aleatoria.domain.hub.Hub}.
    @param max_content: longest chat content, in UTF-8 bytes.
    @param quotas: the L{aleatoria.domain.limits.Quotas} of what a user,
        and its address, may store.
    """

    def __init__(self, hub: Hub, max_content: int, quotas: Quotas | Unlimited) -> None:
        self._hub = hub
        self._max_content = max_content
        self._quotas = quotas

    def post(self, conn: IConnection, content: str, *, to_user: str = "", room: str = "",
             message_id: str = "") -> Deferred[None]:
        """
        Check what every chat message needs, stamp it, and post it: a
        direct message to C{to_user}, or else room chat in C{room}. Its
        echo reaches the sender once its outcome is known, after what
        failed if anything did (L{PostFailed}). Fires when all is done.
        """
        user = conn.user_id
        check_content(content, self._max_content)
        if len(message_id) > MAX_MESSAGE_ID:
            raise Invalid(f"messageId is longer than {MAX_MESSAGE_ID}.")
        if to_user:
            if to_user == user:
                raise Invalid("You cannot message yourself.")
            check_user(to_user)
        elif not room:
            raise Invalid("A chat message needs toUser or room.")
        elif room not in self._hub.rooms.rooms_of(user):
            raise NotInRoom(NOT_IN_ROOM, fault="unauthorized_room_send")
        check_room_for_history(self._hub.streams)
        at = self._hub.clock.next_ns()
        message_id = message_id or uuid.uuid4().hex
        if to_user:
            message: DirectMessage | RoomMessage = DirectMessage(
                user, to_user, content, message_id, format_ns(at))
        else:
            message = RoomMessage(room, user, content, message_id, format_ns(at))
        self._charge(conn, message)
        self._hub.delivery.awaiting(message)
        try:
            if isinstance(message, DirectMessage):
                d = self._hub.direct.post(message, conn)
            else:
                d = self.post_room(message, at, conn)
        except BaseException:
            self._hub.delivery.settled(message)
            raise
        # Twisted takes None for no keywords, which its annotations do not say
        return d.addCallbacks(self._settle, self._refused, (message,), None,  # type: ignore[arg-type]
                              (message,))

    def _refused(self, failure: Failure, message: DirectMessage | RoomMessage) -> Failure:
        """Nothing was posted (the store refused it): no echo is coming."""
        self._hub.delivery.settled(message)
        return failure

    def _charge(self, conn: IConnection, message: DirectMessage | RoomMessage) -> None:
        """
        Charge C{message} to its sender's shares, and its address's: its
        encoded size, once, whatever the store keeps of it.

        @raise QuotaExceeded: a share is used up; nothing was charged.
        """
        to_user = message.recipient if isinstance(message, DirectMessage) else ""
        try:
            self._quotas.charge(conn.user_id, conn.address, len(_weigh(message)), to_user)
        except OverQuota as short:
            raise QuotaExceeded(_SHORT[short.whose, short.what]) from None

    def _settle(self, outcome: Outcome, message: DirectMessage | RoomMessage) -> None:
        """The sender hears what failed, if anything, and then its echo."""
        failed = None
        if outcome.failed:
            failed = PostFailed(message.sender, message.message_id, outcome.failed,
                                missed_sentence(message.message_id, outcome.failed))
        self._hub.delivery.settled(message, failed)

    # Room chat

    def post_room(self, message: RoomMessage, at_ns: int,
                  conn: IConnection | None = None) -> Deferred[Outcome]:
        """
        Room chat, stamped (from C{conn}'s user, or from the server): into
        the room's stream, through which every member on every daemon --
        the sender's echo too -- gets it numbered. Fire with its
        L{Outcome}. If the store cannot take it, the members here get it
        all the same, unnumbered.
        """
        hub = self._hub
        if conn is not None:
            members = len(hub.rooms.members_here(message.room))
            hub.tell(RoomPosted(message.sender, message.room, members))
        d = hub.work.timed(hub.streams.post_room(message, at_ns), "post_room")
        d = hub.work.watch(d, "post_room", message.sender, timed=False)

        def posted(result: Posted | Failed) -> Outcome:
            if result is FAILED:
                self._room_without_store(message)
                return Outcome(["delivery", "history"])
            return Outcome(["delivery"] if result.missed else [])

        return d.addCallback(posted)

    def _room_without_store(self, message: RoomMessage) -> None:
        hub = self._hub
        hub.delivery.without_store(message)
        hub.delivery.unnumbered(hub.rooms.members_here(message.room), message)

    def room_post(self, message: RoomMessage) -> None:
        """A numbered message of a room's stream: to its members here."""
        hub = self._hub
        if hub.delivery.had_without_store(message):
            return
        members = hub.rooms.members_here(message.room)
        if members:
            hub.delivery.stream(("room", message.room), list(members), message)


def check_room_for_history(streams: IStreams) -> None:
    """@raise QuotaExceeded: the store keeps all it may and can evict nothing more."""
    if streams.full():
        raise QuotaExceeded("The server keeps as much history as it may; try again later.")


def missed_sentence(message_id: str, failed: Iterable[str]) -> str:
    return (f"Message {message_id} may not have been "
            f"{' or '.join(_MISSED[what] for what in failed)}: "
            "part of the service is unavailable; try again later.")


def confirm(outcome: Outcome, message_id: str) -> None:
    """
    For the server API, which waits: if the message may have missed
    somebody, or its history, one L{Unavailable} naming it.
    """
    if outcome.failed:
        raise Unavailable(missed_sentence(message_id, outcome.failed),
                          messageId=message_id, failed=outcome.failed)


class Unlimited:
    """Quotas that never run out (a hub built without any)."""

    def charge(self, user: str, address: str, size: int, to_user: str = "") -> None:
        pass


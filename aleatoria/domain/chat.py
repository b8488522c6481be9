"""
Chat messages: what every one needs (content, size, a user or a room),
stamped once, handed to its domain (a room's, or a direct message), and
confirmed after the echo.
"""

import uuid

from aleatoria.domain.clock import format_ns
from aleatoria.domain.limits import OverQuota
from aleatoria.domain.ports import Invalid, QuotaExceeded, TooLarge, Unavailable
from aleatoria.edge.wire import USER_ID_RULE, ChatPayload, Envelope, encode, shown, valid_user_id

MAX_MESSAGE_ID = 128

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
"""What a client is told when a share (L{aleatoria.limits.Shares}) is used up."""


class Chat:
    """
    @param outbox: the hub's L{aleatoria.hub.outbox.Outbox}.
    @param store: the L{aleatoria.interfaces.IStore} (whether it is full).
    @param rooms: the hub's L{aleatoria.hub.rooms.Rooms}.
    @param direct: the hub's L{aleatoria.hub.direct.Direct}.
    @param max_content: longest chat content, in UTF-8 bytes.
    @param quotas: the L{aleatoria.limits.Quotas} of what a user, and its
        address, may store.
    """

    def __init__(self, outbox, store, rooms, direct, max_content, quotas):
        self._store = store
        self._out = outbox
        self._rooms = rooms
        self._direct = direct
        self._max_content = max_content
        self._quotas = quotas

    def post(self, conn, content, *, to_user="", room="", message_id=""):
        """
        Check what every chat message needs, stamp it, and hand it to its
        domain: a direct message to C{to_user}, or else room chat in
        C{room}. The sender's echo goes out at once; the Deferred returned
        fires when every other part is done (L{confirm}).
        """
        user = conn.user_id
        check_content(content, self._max_content)
        if len(message_id) > MAX_MESSAGE_ID:
            raise Invalid(f"messageId is longer than {MAX_MESSAGE_ID}.")
        if to_user:
            if to_user == user:
                raise Invalid("You cannot message yourself.")
            if not valid_user_id(to_user):
                raise Invalid(f"toUser {shown(to_user)} is not a user id ({USER_ID_RULE}).")
        elif not room:
            raise Invalid("A chat message needs toUser or room.")
        else:
            self._rooms.may_post(conn, room)
        check_room_for_history(self._store)

        at = self._out.next_ns()
        message = Envelope(
            type="chat_message",
            fromUser=user,
            toUser=to_user,
            room="" if to_user else room,
            payload=ChatPayload(content),
            messageId=message_id or uuid.uuid4().hex,
            createTime=format_ns(at),
        )
        self._charge(conn, message)
        if to_user:
            outcome = self._direct.post(message, conn)
        else:
            outcome = self._rooms.post(message, at, conn)
        return outcome.addCallback(confirm, message.messageId)

    def _charge(self, conn, message):
        """
        Charge C{message} to its sender's shares, and its address's: its
        encoded size, once, whatever the store keeps of it.

        @raise QuotaExceeded: a share is used up; nothing was charged.
        """
        try:
            self._quotas.charge(conn.user_id, conn.peer, len(encode(message)), message.toUser)
        except OverQuota as short:
            raise QuotaExceeded(_SHORT[short.whose, short.what]) from None


def check_content(content, max_content):
    """
    What every chat message's content needs, a client's or the server
    API's: some, and at most C{max_content} UTF-8 bytes.

    @raise Invalid: it is empty.
    @raise TooLarge: it is longer.
    """
    if not content:
        raise Invalid("A chat message needs content.")
    if len(content) * 4 > max_content and len(content.encode()) > max_content:
        raise TooLarge(f"A chat message has at most {max_content} bytes.")


def check_room_for_history(store):
    """@raise QuotaExceeded: C{store} keeps all it may (C{--max-history-bytes})."""
    if store.full():
        raise QuotaExceeded("The server keeps as much history as it may; try again later.")


def confirm(outcome, message_id):
    """
    After the echo: if the message may have missed somebody on another
    daemon, or its history, say so -- one L{Unavailable} naming it. Its
    recipients here have it; nothing is retried, so nothing doubles.
    """
    failed = outcome.failed
    if failed:
        raise Unavailable(
            f"Message {message_id} may not have been "
            f"{' or '.join(_MISSED[what] for what in failed)}: "
            "part of the service is unavailable; try again later.",
            messageId=message_id, failed=failed,
        )


class Unlimited:
    """Quotas that never run out (a hub built without any)."""

    def charge(self, user, address, size, to_user=""):
        pass

"""
Chat messages: what every one needs (content, size, a user or a room),
stamped once, handed to its domain (a room's, or a direct message), and
confirmed after the echo.
"""

import uuid

from msgspec.structs import replace
from twisted.internet.defer import gatherResults

from ..clock import format_ns
from ..messages import shown, valid_user_id
from .outbox import FAILED

MAX_MESSAGE_ID = 128


class Chat:
    """
    @param outbox: the hub's L{aleatoria.hub.outbox.Outbox}.
    @param rooms: the hub's L{aleatoria.hub.rooms.Rooms}.
    @param direct: the hub's L{aleatoria.hub.direct.Direct}.
    @param max_content: longest chat content, in UTF-8 bytes.
    """

    def __init__(self, outbox, rooms, direct, max_content):
        self._out = outbox
        self._rooms = rooms
        self._direct = direct
        self._max_content = max_content

    def chat_message(self, conn, envelope):
        """
        Check what every chat message needs, stamp it, and hand it to its
        domain: a room's, or a direct message. Then confirm it (L{_confirm}).
        """
        user, content = conn.user_id, envelope.payload.content
        refuse = self._out.refuse
        if not content:
            return refuse(conn, "invalid_message", "A chat message needs content.")
        if len(content) * 4 > self._max_content and len(content.encode()) > self._max_content:
            return refuse(
                conn, "too_large", f"A chat message has at most {self._max_content} bytes."
            )
        if len(envelope.messageId) > MAX_MESSAGE_ID:
            return refuse(conn, "invalid_message", f"messageId is longer than {MAX_MESSAGE_ID}.")
        if envelope.toUser:
            if envelope.toUser == user:
                return refuse(conn, "invalid_message", "You cannot message yourself.")
            if not valid_user_id(envelope.toUser):
                return refuse(conn, "invalid_message", f"toUser {shown(envelope.toUser)} is "
                              "not a user id (1-64 letters, digits or _ - . : @).")
        elif not envelope.room:
            return refuse(conn, "invalid_message", "A chat message needs toUser or room.")
        elif not self._rooms.may_post(conn, envelope.room):
            return None

        at = self._out.next_ns()
        message = replace(
            envelope,
            fromUser=user,
            room="" if envelope.toUser else envelope.room,
            messageId=envelope.messageId or uuid.uuid4().hex,
            createTime=format_ns(at),
        )
        if message.toUser:
            delivered, saved = self._direct.post(conn, message)
            saving = "save_direct_message"
        else:
            delivered, saved = self._rooms.post(conn, message, at)
            saving = "save_room_message"
        outcome = gatherResults([
            self._out.watch(delivered, "deliver", conn, reply=False),
            self._out.watch(saved, saving, conn, reply=False),
        ])
        outcome.addCallback(self._confirm, conn, message.messageId)

    def _confirm(self, outcome, conn, message_id):
        """
        After the echo: if the message may have missed somebody on another
        daemon, or its history, say so -- one C{unavailable} naming it. Its
        local recipients have it; nothing is retried, so nothing doubles.
        """
        failed = [what for what, result in zip(("delivery", "history"), outcome, strict=True)
                  if result is FAILED]
        if not failed or not self._out.current(conn):
            return
        missed = {"delivery": "delivered to everyone", "history": "saved to history"}
        self._out.refuse(
            conn, "unavailable",
            f"Message {message_id} may not have been "
            f"{' or '.join(missed[what] for what in failed)}: "
            "part of the service is unavailable; try again later.",
            messageId=message_id, failed=failed,
        )

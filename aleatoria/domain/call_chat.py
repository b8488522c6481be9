"""
Chat within a call: text between the two users of a match, relayed live
and kept nowhere -- no history, no inbox, no unread count -- so that what
is said in a call with a stranger ends with it.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, NoReturn

from twisted.internet.defer import Deferred

from aleatoria.domain.events import CallMessage
from aleatoria.domain.ports import IConnection
from aleatoria.domain.refusals import Forbidden, Invalid
from aleatoria.domain.rules import MAX_MESSAGE_ID, check_content, check_user

if TYPE_CHECKING:
    from aleatoria.domain.hub import Hub

NOT_YOUR_PARTNER = "You may send call_message only to the partner you are in a call with."


class CallChat:
    """
    @param hub: the L{aleatoria.domain.hub.Hub}.
    @param max_content: longest content, in UTF-8 bytes (as for chat).
    """

    def __init__(self, hub: Hub, max_content: int) -> None:
        self._hub = hub
        self._max_content = max_content

    def send(self, conn: IConnection, to_user: str, content: str,
             message_id: str = "") -> Deferred[None]:
        """
        Relay C{content} to C{to_user}, C{conn}'s partner, wherever it is;
        the sender gets its echo once the partner has it. Fire when done.

        @raise Forbidden: C{to_user} is not the sender's partner.
        @raise Offline: the partner is connected nowhere (errback).
        """
        user, hub = conn.user_id, self._hub
        if not to_user:
            raise Invalid("A call message needs toUser.")
        check_user(to_user)
        check_content(content, self._max_content)
        if len(message_id) > MAX_MESSAGE_ID:
            raise Invalid(f"messageId is longer than {MAX_MESSAGE_ID}.")
        if hub.calls.partner(user) != to_user:
            raise Forbidden(NOT_YOUR_PARTNER)
        message = CallMessage(user, to_user, content, message_id or uuid.uuid4().hex,
                              hub.stamp())
        d = hub.deliver(to_user, message)
        d.addCallback(self._delivered, message)
        return hub.work.watch(d, "call_message", user, asked=True, timed=False)

    def _delivered(self, delivered: bool, message: CallMessage) -> Deferred[NoReturn] | None:
        if not delivered:
            return self._hub.calls.offline(message.recipient)
        self._hub.delivery.send(message.sender, message)
        return None

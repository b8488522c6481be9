"""Direct messages between two users: posting, each party's inbox, and history."""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred

from aleatoria.domain.chat import Outcome
from aleatoria.domain.events import DirectMessage, DirectSent
from aleatoria.domain.ports import IConnection
from aleatoria.domain.refusals import Invalid
from aleatoria.domain.rooms import MAX_HISTORY_PAGE
from aleatoria.domain.rules import check_limit, check_user
from aleatoria.domain.values import Conversation, Posted
from aleatoria.domain.work import FAILED, Failed

if TYPE_CHECKING:
    from aleatoria.domain.hub import Hub


class Direct:
    """@param hub: the L{aleatoria.domain.hub.Hub}."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub

    def post(self, message: DirectMessage, conn: IConnection | None = None) -> Deferred[Outcome]:
        """
        A direct message, stamped (from C{conn}'s user, or from the
        server): into the pair's history and both inboxes, through which
        the recipient, wherever it is, and the sender get it numbered --
        kept also when the recipient is offline. Fire with its L{Outcome}.
        If the store cannot take it, a recipient here gets it all the
        same, unnumbered, and so does the sender's echo.
        """
        hub = self._hub
        if conn is not None:
            hub.tell(DirectSent(message.sender, message.recipient))
        d = hub.work.timed(hub.streams.post_direct(message), "post_direct")
        d = hub.work.watch(d, "post_direct", message.sender, timed=False)

        def posted(result: Posted | Failed) -> Outcome:
            if result is FAILED:
                here = self._without_store(message)
                return Outcome(["history"] if here else ["delivery", "history"], here)
            return Outcome(["delivery"] if result.missed else [], result.online)

        return d.addCallback(posted)

    def _without_store(self, message: DirectMessage) -> bool:
        """Deliver here what the store could not take; whether the recipient is here."""
        hub = self._hub
        hub.delivery.without_store(message)
        here = [user for user in (message.sender, message.recipient)
                if user in hub.connections]
        hub.delivery.unnumbered(here, message)
        return message.recipient in hub.connections

    def inbox_post(self, user: str, message: DirectMessage) -> bool:
        """A numbered message of C{user}'s inbox, for the user if here; whether it is."""
        hub = self._hub
        if user not in hub.connections:
            return False
        if not hub.delivery.had_without_store(message):
            hub.delivery.stream(("inbox", user), [user], message)
        return True

    def history(self, conn: IConnection, with_user: str,
                limit: int) -> Deferred[list[DirectMessage]]:
        """
        Fire with the last C{limit} (at most L{MAX_HISTORY_PAGE}) messages
        between C{conn}'s user and C{with_user}, numbered as the former's
        inbox numbers them; C{with_user} may be C{system}, who writes
        through the server API.
        """
        if not with_user:
            raise Invalid("get_direct_messages needs payload.withUser.")
        check_user(with_user, "withUser", system=True)
        check_limit(limit)
        hub = self._hub
        d = hub.streams.direct_history(conn.user_id, with_user, min(limit, MAX_HISTORY_PAGE))
        return hub.work.watch(d, "direct_messages", conn.user_id, asked=True)

    def conversations(self, conn: IConnection, limit: int,
                      before: int) -> Deferred[list[Conversation]]:
        """
        Fire with up to C{limit} (at most L{MAX_HISTORY_PAGE}) of C{conn}'s
        user's L{Conversation}s, the most recent first, those whose last
        message is before inbox offset C{before} (if given).
        """
        check_limit(limit)
        if before < 0:
            raise Invalid("before must be an offset (0 or more).")
        hub = self._hub
        d = hub.streams.conversations(conn.user_id, min(limit, MAX_HISTORY_PAGE), before)
        return hub.work.watch(d, "conversations", conn.user_id, asked=True)

    def mark_read(self, conn: IConnection, with_user: str, offset: int) -> Deferred[int]:
        """
        C{conn}'s user has read its conversation with C{with_user} up to its
        inbox offset C{offset}; fire with what is left unread there.
        """
        check_user(with_user, "withUser", system=True)
        if offset < 0:
            raise Invalid("offset must be 0 or more.")
        hub = self._hub
        d = hub.streams.mark_read(conn.user_id, with_user, offset)
        return hub.work.watch(d, "mark_read", conn.user_id, asked=True)

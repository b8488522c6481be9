"""Direct messages between two users, and their history."""

from msgspec.structs import replace

from aleatoria.domain.outbox import FAILED, MAX_HISTORY_PAGE, Outcome, as_seen_by
from aleatoria.domain.ports import Invalid
from aleatoria.edge.wire import SYSTEM, USER_ID_RULE, shown, valid_user_id


class Direct:
    """
    @param outbox: the hub's L{aleatoria.hub.outbox.Outbox}.
    @param store: the L{aleatoria.interfaces.IStore}.
    """

    def __init__(self, outbox, store):
        self._out = outbox
        self._store = store

    def post(self, message, conn=None):
        """
        A direct message, stamped (from C{conn}'s user, or from the
        server): into the pair's history and both inboxes, through which
        the recipient, wherever it is, and the sender get it numbered --
        kept also when the recipient is offline. Fire with its L{Outcome}.
        If the store cannot take it, a recipient here gets it all the
        same, unnumbered, and so does the sender's echo.
        """
        if conn is not None:
            conn.report.breadcrumb("message", "Direct message sent", toUser=message.toUser)
        d = self._out.watch(
            self._out.post_direct(message.fromUser, message.toUser, message), "post_direct",
            conn, timed=False)

        def posted(result):
            if result is FAILED:
                here = self._fall_back(message, conn)
                return Outcome(["history"] if here else ["delivery", "history"], here)
            return Outcome(["delivery"] if result.missed else [], result.online)

        return d.addCallback(posted)

    def _fall_back(self, message, conn):
        """Deliver here what the store could not take; whether the recipient is here."""
        self._out.falling_back(message)
        if conn is not None and self._out.current(conn):
            self._out.send(conn, replace(message, incoming=False))
        recipient = self._out.connections.get(message.toUser)
        if recipient is not None:
            self._out.send(recipient, replace(message, incoming=True))
        return recipient is not None

    def stream(self, user, envelope):
        """A numbered message of C{user}'s inbox, for the user if here; whether it is."""
        if user not in self._out.connections:
            return False
        if not self._out.fell_back(envelope):
            self._out.stream(("inbox", user), [user],
                             replace(envelope, incoming=envelope.fromUser != user))
        return True

    def history(self, conn, with_user, limit):
        """
        Fire with the last C{limit} (at most L{MAX_HISTORY_PAGE}) messages
        between C{conn}'s user and C{with_user}, as the former sees them;
        C{with_user} may be C{system}, who writes through the server API.
        """
        if not with_user:
            raise Invalid("get_direct_messages needs payload.withUser.")
        if not valid_user_id(with_user) and with_user != SYSTEM:
            raise Invalid(f"withUser {shown(with_user)} is not a user id ({USER_ID_RULE}).")
        if limit < 1:
            raise Invalid("limit must be at least 1.")
        d = self._store.direct_messages(conn.user_id, with_user, min(limit, MAX_HISTORY_PAGE))
        d.addCallback(lambda messages: as_seen_by(conn.user_id, messages))
        return self._out.watch(d, "direct_messages", conn, asked=True)

    def conversations(self, conn, limit, before):
        """
        Fire with up to C{limit} (at most L{MAX_HISTORY_PAGE}) of C{conn}'s
        user's conversations, the most recent first, those whose last
        message is before inbox offset C{before} (if given).
        """
        if limit < 1:
            raise Invalid("limit must be at least 1.")
        if before < 0:
            raise Invalid("before must be an offset (0 or more).")
        d = self._store.conversations(conn.user_id, min(limit, MAX_HISTORY_PAGE), before)
        d.addCallback(lambda found: [
            (c.with_user, as_seen_by(conn.user_id, [c.last])[0], c.unread) for c in found])
        return self._out.watch(d, "conversations", conn, asked=True)

    def mark_read(self, conn, with_user, offset):
        """
        C{conn}'s user has read its conversation with C{with_user} up to its
        inbox offset C{offset}; fire with what is left unread there.
        """
        if not valid_user_id(with_user) and with_user != SYSTEM:
            raise Invalid(f"withUser {shown(with_user)} is not a user id ({USER_ID_RULE}).")
        if offset < 0:
            raise Invalid("offset must be 0 or more.")
        d = self._store.mark_read(conn.user_id, with_user, offset)
        return self._out.watch(d, "mark_read", conn, asked=True)

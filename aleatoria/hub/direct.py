"""Direct messages between two users, and their history."""

from msgspec.structs import replace

from ..interfaces import Invalid
from ..messages import SYSTEM, USER_ID_RULE, shown, valid_user_id
from .outbox import MAX_HISTORY_PAGE, as_seen_by


class Direct:
    """
    @param outbox: the hub's L{aleatoria.hub.outbox.Outbox}.
    @param store: the L{aleatoria.interfaces.IStore}.
    """

    def __init__(self, outbox, store):
        self._out = outbox
        self._store = store

    def post(self, conn, message):
        """
        A direct message, stamped: to its recipient wherever it is, the
        echo to the sender, and into the pair's history (also when the
        recipient is offline). The delivery and the save, as Deferreds.
        """
        conn.report.breadcrumb("message", "Direct message sent", toUser=message.toUser)
        delivered = self._out.deliver(message.toUser, replace(message, incoming=True))
        self._out.send(conn, replace(message, incoming=False))
        saved = self._store.save_direct_message(conn.user_id, message.toUser, message)
        return delivered, saved

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

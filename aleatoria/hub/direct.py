"""Direct messages between two users, and their history."""

from msgspec.structs import replace

from ..messages import valid_user_id
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

    def get_direct_messages(self, conn, envelope):
        query = envelope.payload
        if not query.withUser:
            return self._out.refuse(
                conn, "invalid_message", "get_direct_messages needs payload.withUser.")
        if not valid_user_id(query.withUser):
            return self._out.refuse(conn, "invalid_message", "withUser is not a user id.")
        if query.limit < 1:
            return self._out.refuse(conn, "invalid_message", "limit must be at least 1.")
        d = self._store.direct_messages(
            conn.user_id, query.withUser, min(query.limit, MAX_HISTORY_PAGE)
        )
        d.addCallback(lambda messages: self._out.reply(
            conn,
            "direct_messages",
            {"messages": as_seen_by(conn.user_id, messages), "withUser": query.withUser},
        ))
        self._out.watch(d, "direct_messages", conn)

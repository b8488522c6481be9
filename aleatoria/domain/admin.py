"""
What a product's backend may do through the server API (aleatoria.api):
speak as C{system} to a room or a user, cut a user off, and read rooms,
members, users and load -- across every daemon, as plain values.
"""

import uuid

from twisted.logger import Logger

from aleatoria.domain.chat import check_content, check_room_for_history, confirm
from aleatoria.domain.clock import format_ns
from aleatoria.domain.ports import Invalid, Offline, TooLarge
from aleatoria.domain.rooms import ROOM_RULE
from aleatoria.edge.wire import (
    SYSTEM,
    USER_ID_RULE,
    ChatPayload,
    Envelope,
    shown,
    valid_room,
    valid_user_id,
)

MAX_REASON = 123
"""Bytes of a close reason: what a WebSocket close frame has room for."""


class Admin:
    """
    @param outbox: the hub's L{aleatoria.hub.outbox.Outbox}.
    @param store: the L{aleatoria.interfaces.IStore}.
    @param peers: the L{aleatoria.interfaces.IPeers}.
    @param rooms: the hub's L{aleatoria.hub.rooms.Rooms}.
    @param direct: the hub's L{aleatoria.hub.direct.Direct}.
    @param max_content: longest content, in UTF-8 bytes (as for clients).
    """

    ROOMS_PAGE = 1000
    MEMBERS_PAGE = 1000
    _log = Logger(namespace="aleatoria.domain.hub.Hub")

    def __init__(self, outbox, store, peers, rooms, direct, max_content):
        self._out = outbox
        self._store = store
        self._peers = peers
        self._rooms = rooms
        self._direct = direct
        self._max_content = max_content

    # Speaking as the server

    async def publish(self, room, content):
        """
        A message from C{system} to the members of C{room} on every daemon,
        kept in its history; what it was stamped with.
        """
        if not valid_room(room):
            raise Invalid(ROOM_RULE)
        message, at = self._message(content, room=room)
        self._log.info("The server API posted to {room!r}", room=room)
        confirm(await self._rooms.post(message, at), message.messageId)
        return {"room": room, "messageId": message.messageId, "createTime": message.createTime}

    async def send(self, to_user, content):
        """
        A direct message from C{system} to C{to_user}, kept in their
        conversation (read with C{withUser} C{system}); whether the user
        is online now.
        """
        if not valid_user_id(to_user):
            raise Invalid(f"toUser {shown(to_user)} is not a user id ({USER_ID_RULE}).")
        message, _ = self._message(content, to_user=to_user)
        self._log.info("The server API wrote to {user}", user=to_user)
        outcome = await self._direct.post(message)
        confirm(outcome, message.messageId)
        return {"toUser": to_user, "messageId": message.messageId,
                "createTime": message.createTime, "online": outcome.online}

    def _message(self, content, to_user="", room=""):
        """The message from C{system}, checked as a client's would be, and its time."""
        check_content(content, self._max_content)
        check_room_for_history(self._store)
        at = self._out.next_ns()
        return Envelope(type="chat_message", fromUser=SYSTEM, toUser=to_user, room=room,
                        payload=ChatPayload(content), messageId=uuid.uuid4().hex,
                        createTime=format_ns(at)), at

    async def disconnect(self, user, reason):
        """
        Close C{user}'s connection, on whichever daemon, with 4003 and
        C{reason}.

        @raise Offline: the user is connected nowhere.
        """
        if not valid_user_id(user):
            raise Invalid(f"userId {shown(user)} is not a user id ({USER_ID_RULE}).")
        if len(reason.encode()) > MAX_REASON:
            raise TooLarge(f"reason has at most {MAX_REASON} bytes.")
        if not self.kick_here(user, reason):
            found = await self._out.watch(self._peers.kick(user, reason), "kick", asked=True)
            if not found:
                raise Offline(f"{user} is not connected.")
        return {"userId": user, "disconnected": True}

    def kick_here(self, user, reason):
        """Close C{user}'s connection to this daemon, if it has one; whether it had."""
        conn = self._out.connections.get(user)
        if conn is None:
            return False
        self._log.info("{user} disconnected by the server API: {reason}", user=user,
                       reason=shown(reason))
        conn.kick(reason)
        return True

    # Reading

    async def rooms(self, limit, after):
        """One page of the rooms with members, on every daemon, each with how many."""
        rooms, total = await self._read(self._store.rooms(limit, after))
        page = {"rooms": [{"room": room, "members": count} for room, count in rooms],
                "count": total}
        if len(rooms) == limit and rooms:
            page["next"] = rooms[-1][0]
        return page

    async def members(self, room, limit, after):
        """One page of the members of C{room} on every daemon, as clients page them."""
        if not valid_room(room):
            raise Invalid(ROOM_RULE)
        page, count, following = await self._read(self._store.room_members(room, limit, after),
                                                  "room_members")
        answer = {"room": room, "members": page, "count": count}
        if following:
            answer["next"] = following
        return answer

    async def user(self, user):
        """Where C{user} is: online, on which daemon, in which rooms, in a call."""
        if not valid_user_id(user):
            raise Invalid(f"userId {shown(user)} is not a user id ({USER_ID_RULE}).")
        node = await self._read(self._store.whereabouts(user))
        rooms = await self._read(self._store.user_rooms(user))
        match = await self._read(self._store.match_of(user))
        return {"userId": user, "online": node is not None, "daemon": node,
                "rooms": rooms if node is not None else [], "inCall": match is not None}

    def _read(self, d, operation="api_read"):
        """C{d}, watched as store work a caller waits for (L{Unavailable} if it fails)."""
        return self._out.watch(d, operation, asked=True)

    async def stats(self):
        """Connections, rooms and the pool: in all, and per daemon."""
        daemons = await self._read(self._peers.daemons(), "daemons")
        pool = await self._read(self._store.pool_size(), "pool_size")
        _, rooms = await self._read(self._store.rooms(1, ""))
        return {"connections": sum(d["connections"] for d in daemons), "rooms": rooms,
                "poolSize": pool, "daemons": daemons}

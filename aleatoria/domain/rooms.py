"""
Rooms: membership of this daemon's connections, joining and leaving,
presence (C{user_joined} / C{user_left}), room chat and room history.
"""

import collections
from dataclasses import dataclass

from msgspec.structs import replace
from twisted.internet.defer import succeed
from twisted.logger import Logger

from aleatoria.domain.clock import parse_rfc3339
from aleatoria.domain.membership import Membership
from aleatoria.domain.outbox import FAILED, MAX_HISTORY_PAGE, Outcome, as_seen_by
from aleatoria.domain.ports import Forbidden, Invalid, NotInRoom, QuotaExceeded
from aleatoria.edge.wire import ROOM_NAME_RULE, SHOWN, SYSTEM, Envelope, shown, valid_room

NOT_IN_ROOM = "You are not in that room. Join the room first."
MAX_MEMBERS_PAGE = 1000
PRESENCE = frozenset({"user_joined", "user_left"})
ROOM_RULE = f"A room name is {ROOM_NAME_RULE}."


@dataclass(frozen=True)
class RoomQuota:
    """
    Rooms with members on this daemon, and members in each, at most; and
    rooms that one client address opened -- joined while they had no
    member here, and that have members still.
    """

    rooms: int = 100_000
    room_members: int = 10_000
    rooms_per_address: int = 1_000


class Rooms:
    """
    @param outbox: the hub's L{aleatoria.hub.outbox.Outbox}.
    @param store: the L{aleatoria.interfaces.IStore}.
    @param max_rooms: rooms one connection may be in.
    @param presence_limit: members of a room on this daemon up to which
        they hear each other come and go.
    @param quota: the L{RoomQuota}: how many rooms, how many in each.
    """

    _log = Logger(namespace="aleatoria.domain.hub.Hub")

    def __init__(self, outbox, store, max_rooms, presence_limit, quota=None):
        self._quota = quota or RoomQuota()
        self._out = outbox
        self._store = store
        self._max_rooms = max_rooms
        self._presence_limit = presence_limit
        self.membership = Membership()
        self._opened_by = {}
        """Room -> the client address whose user opened it (L{RoomQuota})."""
        self._opened = collections.Counter()
        """Address -> rooms it opened that have members still."""

    def rooms_of(self, user):
        return self.membership.rooms_of(user)

    # What clients ask

    def join(self, conn, room):
        """Put C{conn}'s user in C{room}, if it may be there."""
        user = conn.user_id
        if not valid_room(room):
            raise Invalid(ROOM_RULE)
        rooms = self.rooms_of(user)
        if room not in rooms and len(rooms) >= self._max_rooms:
            raise Forbidden(f"You are in {self._max_rooms} rooms; leave one first.")
        if not conn.may_join(room):
            raise Forbidden("Your token does not let you join that room.")
        if room not in rooms:
            self._room_quota(room, conn.peer)
        self.enter(user, room)

    def _room_quota(self, room, address):
        """
        @raise QuotaExceeded: C{room} is full, or a new room would be one
            more than this daemon keeps, or than C{address} may open.
        """
        members = len(self.membership.members(room))
        if members >= self._quota.room_members:
            raise QuotaExceeded(f"That room has {members} members, as many as it may.")
        if members:
            return
        if len(self.membership.rooms()) >= self._quota.rooms:
            raise QuotaExceeded("There are as many rooms as there may be; join one of them.")
        if self._opened[address] >= self._quota.rooms_per_address:
            raise QuotaExceeded("The users of your address have opened as many rooms as they "
                                "may; join a room that has members, or empty one of theirs.")

    def leave(self, conn, room):
        """Take C{conn}'s user out of C{room}, if it is there."""
        if not valid_room(room):
            raise Invalid(ROOM_RULE)
        if room in self.rooms_of(conn.user_id):
            self.exit(conn.user_id, room)

    def members(self, conn, room, limit=MAX_MEMBERS_PAGE, after=""):
        """
        Fire with one page of the members of C{room} on every daemon: up to
        C{limit} ids (at most L{MAX_MEMBERS_PAGE}) in order, those after
        C{after}; and how many there are in all.
        """
        self._member_of(conn, room, "get_room_members")
        if limit < 1:
            raise Invalid("limit must be at least 1.")
        d = self._store.room_members(room, min(limit, MAX_MEMBERS_PAGE), after)
        return self._out.watch(d, "room_members", conn, asked=True)

    def history(self, conn, room, limit, before=""):
        """
        Fire with up to C{limit} (at most L{MAX_HISTORY_PAGE}) messages of
        C{room} older than C{before} (an RFC 3339 time, if given), as
        C{conn}'s user sees them.
        """
        self._member_of(conn, room, "get_recent_messages")
        if limit < 1:
            raise Invalid("limit must be at least 1.")
        try:
            before_ns = parse_rfc3339(before) if before else None
        except ValueError:
            raise Invalid("before must be an RFC 3339 timestamp.") from None
        d = self._store.room_messages(room, min(limit, MAX_HISTORY_PAGE), before_ns)
        d.addCallback(lambda messages: as_seen_by(conn.user_id, messages))
        return self._out.watch(d, "room_messages", conn, asked=True)

    def _member_of(self, conn, room, asking):
        if not room:
            raise Invalid(f"{asking} needs room.")
        if room not in self.rooms_of(conn.user_id):
            raise NotInRoom(NOT_IN_ROOM)

    def may_post(self, conn, room):
        """
        Pass if C{conn} may post to C{room}; if not, report the attempt.

        @raise NotInRoom: it may not.
        """
        if room in self.rooms_of(conn.user_id):
            return
        conn.report.fault(
            "User attempted to send to room without membership", "unauthorized_room_send",
            log=self._log, line="{user} refused: not in room {room}",
            fields={"user": conn.user_id, "room": shown(room)}, room=room[:SHOWN],
        )
        raise NotInRoom(NOT_IN_ROOM)

    def post(self, message, at_ns, conn=None):
        """
        Room chat, stamped (from C{conn}'s user, or from the server): into
        the room's stream, through which every member on every daemon --
        the sender's echo too -- gets it numbered. Fire with its
        L{Outcome}. If the store cannot take it, the members here get it
        all the same, unnumbered.
        """
        if conn is not None:
            conn.report.breadcrumb(
                "message", "Room message broadcast", room=message.room,
                members=len(self.membership.members(message.room)),
            )
        d = self._out.watch(self._out.post_room(message.room, message, at_ns), "post_room",
                            conn, timed=False)

        def posted(result):
            if result is FAILED:
                self._fall_back(message, conn)
                return Outcome(["delivery", "history"])
            return Outcome(["delivery"] if result.missed else [])

        return d.addCallback(posted)

    def _fall_back(self, message, conn):
        self._out.falling_back(message)
        self.local(message.room, replace(message, incoming=True), but=message.fromUser)
        if conn is not None and self._out.current(conn):
            self._out.send(conn, replace(message, incoming=False))

    def stream(self, room, envelope):
        """
        A numbered message of C{room}'s stream: to its members here, with
        C{incoming} true, and to its sender, if here, false.
        """
        if self._out.fell_back(envelope):
            return
        key = ("room", room)
        sender = envelope.fromUser
        members = [user for user in self.membership.members(room) if user != sender]
        self._out.stream(key, members, replace(envelope, incoming=True))
        if sender in self._out.connections:
            self._out.stream(key, [sender], replace(envelope, incoming=False))

    # Membership

    def enter(self, user, room, logged=True):
        """
        Put C{user} in C{room} and tell the members. Not C{logged} when the
        line of the connect names the room already.
        """
        if not self.membership.add(room, user):
            return
        self._out.expect_first(user, ("room", room))
        members = self.membership.members(room)
        if len(members) == 1:
            self._opening(room, self._out.connections[user].peer)
        self.announce(room, "user_joined", user, but=user)
        self._out.watch(self._store.join_room(room, user), "join_room",
                        self._out.connections[user])
        if logged:
            self._log.info("{user} joined {room!r} ({count} members)",
                           user=user, room=room, count=len(members))
        self._out.connections[user].report.breadcrumb(
            "room", "Joined room", room=room, members=len(members)
        )

    def exit(self, user, room, persist=True, announce=True):
        """
        Take C{user} out of C{room} and tell the members. C{persist} is false
        when the store's release of the user does that part -- and the
        line of the disconnect says it. The telling, as a Deferred.
        """
        self.membership.discard(room, user)
        if not self.membership.members(room):
            self._emptied(room)
        self._out.forget_first(user, ("room", room))
        told = self.announce(room, "user_left", user) if announce else succeed(None)
        if persist:
            self._out.watch(self._store.leave_room(room, user), "leave_room")
        if persist:
            self._log.info("{user} left {room!r}", user=user, room=room)
        conn = self._out.connections.get(user)
        if conn is not None:
            conn.report.breadcrumb(
                "room", "Left room", room=room, members=len(self.membership.members(room))
            )
        return told

    def _opening(self, room, address):
        """C{room} has members because a user at C{address} joined it: count it as theirs."""
        self._opened_by[room] = address
        self._opened[address] += 1

    def _emptied(self, room):
        """C{room} has no member here any more: it no longer counts for whoever opened it."""
        address = self._opened_by.pop(room, None)
        if address is None:
            return
        self._opened[address] -= 1
        if not self._opened[address]:
            del self._opened[address]

    def exit_all(self, user, announce):
        """Take C{user} out of every room; the tellings, as Deferreds."""
        return [self.exit(user, room, persist=False, announce=announce)
                for room in sorted(self.rooms_of(user))]

    def announce(self, room, kind, user, but=None):
        """
        Tell the members of C{room} (but C{but}), here and elsewhere, that
        C{user} came or went; fire with L{FAILED} if some daemon may have
        missed it.
        """
        return self._out.watch(self.to_room(room, Envelope(
            type=kind,
            fromUser=SYSTEM,
            room=room,
            payload={"room": room, "userId": user},
            createTime=self._out.now(),
        ), but=but), "broadcast", timed=False)

    def to_room(self, room, envelope, but=None):
        """
        Send to every member of C{room} on every daemon, except C{but}; the
        other daemons' part may fail (a Deferred).
        """
        self.local(room, envelope, but)
        return self._out.broadcast(room, envelope)

    def local(self, room, envelope, but=None):
        """
        Send to the members of C{room} on this daemon, except C{but} --
        presence only while they are at most C{presence_limit}: past it,
        each join and leave would cost a message to every member, and a
        room filling up the square of its size.
        """
        members = self.membership.members(room)
        if envelope.type in PRESENCE and len(members) > self._presence_limit:
            return
        self._out.fan_out([u for u in members if u != but], envelope)


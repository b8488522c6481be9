"""
Resuming after a reconnect: a client says where it stands in each stream
-- a room's, its inbox -- and gets, per stream and in order, what it
missed, or is told it must reload.

Nothing is lost, doubled or reordered around the replay: the rooms are
joined first, then what arrives live for those streams is held back
(L{aleatoria.domain.delivery.Hold}) while the history is read and
replayed; the replay ends where live delivery to this connection began
(the first offset it had live since it joined), and what was held
follows, past what was replayed.

The replay is written as the client reads it, never queued whole: a
client that reads keeps its connection however much it missed, one that
stops reading is dropped as any other. It costs the user's message rate
one message per stream named and one per L{REPLAYED_PER_MESSAGE}
replayed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from twisted.internet.defer import Deferred, gatherResults

from aleatoria.domain.delivery import Hold, Numbered, StreamKey
from aleatoria.domain.ports import IConnection
from aleatoria.domain.refusals import Invalid, Refused
from aleatoria.domain.values import Since
from aleatoria.domain.work import FAILED, Failed

if TYPE_CHECKING:
    from aleatoria.domain.hub import Hub



class Position(Protocol):
    """Where a client says it stands in a stream."""

    @property
    def offset(self) -> int: ...

    @property
    def epoch(self) -> str: ...

REPLAYED_PER_MESSAGE = 100
"""Messages a replay sends for each message of the user's rate it costs."""


@dataclass
class Resumed:
    """Where a client stands in a stream after its resume."""

    recovered: bool
    offset: int
    epoch: str


class Resumer:
    """
    @param hub: the L{aleatoria.domain.hub.Hub}.
    @param max_rooms: rooms one connection may be in, and so name in a resume.
    """

    def __init__(self, hub: Hub, max_rooms: int) -> None:
        self._hub = hub
        self._max_rooms = max_rooms

    async def resume(
        self, conn: IConnection, rooms: Mapping[str, Position], direct: Position | None,
    ) -> tuple[dict[str, Resumed | Refused], Resumed | None]:
        """
        Put C{conn} back in C{rooms} (room -> position) and replay what it
        missed there and, with C{direct} (a position), in its inbox. A
        position has an C{offset} and an C{epoch}. Fire with C{(rooms,
        direct)}: per room a L{Resumed} or the L{Refused} that kept the
        client out; for the inbox a L{Resumed} or C{None}.
        """
        hub, user = self._hub, conn.user_id
        if len(rooms) > self._max_rooms:
            raise Invalid(f"A resume names at most {self._max_rooms} rooms (--max-rooms).")
        if hub.delivery.resuming(user):
            raise Invalid("A resume is under way already.")
        answers: dict[str, Resumed | Refused] = {}
        reads: dict[StreamKey, Position] = {}
        for room, position in rooms.items():
            try:
                hub.rooms.join(conn, room)
            except Refused as refusal:
                answers[room] = refusal
                continue
            reads[("room", room)] = position
        if direct is not None:
            reads[("inbox", user)] = direct
        conn.charge(len(rooms) + (direct is not None) - 1)  # the frame paid for one
        hold = hub.delivery.hold(conn, reads)
        try:
            found = await gatherResults([self._read(user, key, position)
                                         for key, position in reads.items()])
            upto = await self._replay(conn, reads, found, hold)
        finally:
            hub.delivery.release(hold)
        if upto is None:
            return answers, None
        for (kind, name), resumed in upto.items():
            if kind == "room":
                answers[name] = resumed
        return answers, upto.get(("inbox", user))

    def _read(self, user: str, key: StreamKey, position: Position) -> Deferred[Since | Failed]:
        kind, name = key
        streams = self._hub.streams
        read = streams.room_since if kind == "room" else streams.inbox_since
        return self._hub.work.watch(read(name, position.offset, position.epoch), "resume", user)

    async def _replay(self, conn: IConnection, reads: dict[StreamKey, Position],
                      found: list[Since | Failed], hold: Hold) -> dict[StreamKey, Resumed] | None:
        """
        Send C{conn} what it missed, then what was held meanwhile, as it
        reads; where it then stands per stream (C{None} if it went away):
        past all the store had when read -- the replay ends where what it
        had live began -- and past what was held.
        """
        if not self._hub.connections.current(conn):
            return None
        upto: dict[StreamKey, Resumed] = {}
        replay: list[Numbered] = []
        had: dict[StreamKey, int] = {}
        for (key, position), since in zip(reads.items(), found, strict=True):
            upto[key], missed = self._missed(conn, key, position, since)
            replay.extend(missed)
            if upto[key].recovered:
                had[key] = since.last  # type: ignore[union-attr]  # recovered: it was read
        conn.charge(len(replay) // REPLAYED_PER_MESSAGE)
        for message in replay:
            if not await self._writable(conn):
                return None
            self._hub.delivery.to((conn,), message)
        while hold.held:
            key, message = hold.held.popleft()
            if message.offset > upto[key].offset:
                if not await self._writable(conn):
                    return None
                self._hub.delivery.to((conn,), message)
                upto[key].offset = message.offset
        for key, last in had.items():  # what the store had then, it has had, live or replayed
            upto[key].offset = max(upto[key].offset, last)
        return upto

    async def _writable(self, conn: IConnection) -> bool:
        """Wait until C{conn} takes more; whether it is still there."""
        await conn.writable()
        return self._hub.connections.current(conn)

    def _missed(self, conn: IConnection, key: StreamKey, position: Position,
                since: Since | Failed) -> tuple[Resumed, list[Numbered]]:
        """
        What C{conn} missed of stream C{key}, if all of it is kept and of
        the client's epoch: where it will then stand, and those messages.
        """
        if since is FAILED:
            return Resumed(False, position.offset, position.epoch), []
        first = self._hub.delivery.first(conn.user_id, key)
        upto = since.last if first is None else min(since.last, first - 1)
        start = position.offset
        missed = [m for m in since.messages if start < m.offset <= upto]
        same = start == 0 or position.epoch == since.epoch
        if not (same and start <= since.last and len(missed) == max(0, upto - start)):
            return Resumed(False, since.last, since.epoch), []
        return Resumed(True, max(upto, start), since.epoch), missed

"""
How pushes reach the users connected here, and the one place that keeps
the promise of streams: nothing lost, doubled or reordered.

Around a resume, what arrives live for the streams being replayed is
held, and follows the replay (L{Hold}); the replay stops where live
delivery to the connection began (L{Delivery.first}). While the store is
unreachable a chat message is delivered here unnumbered, and its numbered
copy -- should the store have taken it after all -- is not delivered a
second time. And a sender hears that part of its message failed before
it hears the message's echo; what comes after the echo in its stream
waits behind it (L{Line}).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Collection, Iterable

from aleatoria.domain.connections import Connections
from aleatoria.domain.events import DirectMessage, Push, RoomMessage
from aleatoria.domain.ports import IConnection, IOutlet

StreamKey = tuple[str, str]
"""A stream: C{("room", room)} or C{("inbox", user)}."""

Numbered = RoomMessage | DirectMessage
"""A message of a stream."""

FALLBACK_MEMORY = 300
"""
Seconds a message delivered here without the store is remembered: a
message is known by its sender and its createTime, stamped once per
message (a later one that reuses its messageId is another message).
"""


class Hold:
    """One user's resume under way: its streams, and what arrived live for them meanwhile."""

    def __init__(self, conn: IConnection, keys: Iterable[StreamKey]) -> None:
        self.conn = conn
        self.keys = frozenset(keys)
        self.held: deque[tuple[StreamKey, Numbered]] = deque()

    def keep(self, key: StreamKey, push: Numbered) -> bool:
        """Hold C{push} back if it is of a stream being resumed; whether it was."""
        if key not in self.keys:
            return False
        self.held.append((key, push))
        self.conn.holding(len(self.held))
        return True


class Waiting:
    """A push of a stream to one user, in its L{Line}: C{ready} once it may go."""

    __slots__ = ("push", "ready", "line")

    def __init__(self, push: Numbered, ready: bool, line: tuple[str, StreamKey]) -> None:
        self.push, self.ready, self.line = push, ready, line


class Line(deque["Waiting"]):
    """
    What one user is to have of one stream after an echo of its own still
    waiting for its outcome: it goes, in order of offset, as the echoes
    before it are let go.
    """


class Delivery:
    """
    @param connections: the hub's L{aleatoria.domain.connections.Connections}.
    @param outlet: the L{aleatoria.domain.ports.IOutlet} that renders and writes.
    """

    def __init__(self, connections: Connections, outlet: IOutlet,
                 seconds: Callable[[], float] = time.monotonic) -> None:
        self._connections = connections
        self._outlet = outlet
        self._seconds = seconds
        self._expecting: dict[StreamKey, set[str]] = {}
        """Stream -> users whose first live message of it is still to come."""
        self._first: dict[str, dict[StreamKey, int]] = {}
        """User -> {stream: the first offset it had live since it joined}."""
        self._holds: dict[str, Hold] = {}
        """User -> its L{Hold}, while it resumes."""
        self._without_store: dict[tuple[str, str], float] = {}
        """(sender, createTime) -> until when it is remembered."""
        self._echoes: dict[tuple[str, str], list[Waiting | Numbered]] = {}
        """(sender, createTime) -> the sender's echoes waiting for the outcome."""
        self._lines: dict[tuple[str, StreamKey], Line] = {}
        """(user, stream) -> its L{Line}, while an echo of its own in it waits."""

    def send(self, user: str, push: Push) -> bool:
        """C{push} to C{user}, if connected here; whether it is."""
        conn = self._connections.get(user)
        if conn is None:
            return False
        self._outlet.send((conn,), push)
        return True

    def to(self, conns: Collection[IConnection], push: Push) -> None:
        """C{push} to these connections, rendered once per view."""
        if conns:
            self._outlet.send(conns, push)

    def fan_out(self, users: Collection[str], push: Push) -> None:
        """C{push} to these users, all connected here."""
        if users:
            get = self._connections.get
            # every user given is connected here: the caller says so
            self._outlet.send([get(user) for user in users], push)  # type: ignore[misc]

    # Streams

    def joined(self, user: str, key: StreamKey) -> None:
        """C{user} joined stream C{key}: note the first offset it will have live."""
        self._expecting.setdefault(key, set()).add(user)

    def left(self, user: str, key: StreamKey) -> None:
        expecting = self._expecting.get(key)
        if expecting is not None:
            expecting.discard(user)
            if not expecting:
                del self._expecting[key]
        firsts = self._first.get(user)
        if firsts is not None:
            firsts.pop(key, None)
            if not firsts:
                del self._first[user]

    def first(self, user: str, key: StreamKey) -> int | None:
        """The first offset of C{key} C{user} had live since it joined, or C{None}."""
        return self._first.get(user, {}).get(key)

    def stream(self, key: StreamKey, users: list[str], push: Numbered) -> None:
        """
        A numbered message of stream C{key} for C{users} here: not to those
        resuming it (their L{Hold} keeps it), nor -- until its outcome is
        known -- to its sender, nor before what waits in a user's L{Line};
        noted as the first of the stream for users who joined it and had
        none yet.
        """
        expecting = self._expecting.pop(key, None)
        if expecting:
            for user in expecting:
                self._first.setdefault(user, {})[key] = push.offset
        if self._holds:
            users = [user for user in users if not self._held(user, key, push)]
        if self._echoes:
            echoes = self._echoes.get((push.sender, push.create_time))
            if echoes is not None and push.sender in users:
                echoes.append(self._queue(push.sender, key, push, False))
                users = [user for user in users if user != push.sender]
        if self._lines:
            lines = self._lines
            for user in [user for user in users if (user, key) in lines]:
                self._queue(user, key, push, True)
            users = [user for user in users if (user, key) not in lines]
        self.fan_out(users, push)

    def _queue(self, user: str, key: StreamKey, push: Numbered, ready: bool) -> Waiting:
        line = self._lines.get((user, key))
        if line is None:
            line = self._lines[user, key] = Line()
        waiting = Waiting(push, ready, (user, key))
        line.append(waiting)
        return waiting

    def _let_go(self, key: tuple[str, StreamKey]) -> None:
        """Send what may go of a L{Line}, from its head."""
        line = self._lines.get(key)
        if line is None:
            return
        while line and line[0].ready:
            self.send(key[0], line.popleft().push)
        if not line:
            del self._lines[key]

    def _held(self, user: str, key: StreamKey, push: Numbered) -> bool:
        hold = self._holds.get(user)
        return hold is not None and hold.keep(key, push)

    # Resumes

    def hold(self, conn: IConnection, keys: Iterable[StreamKey]) -> Hold:
        """C{conn} resumes streams C{keys}: hold their live messages; the L{Hold}."""
        hold = self._holds[conn.user_id] = Hold(conn, keys)
        return hold

    def resuming(self, user: str) -> bool:
        return user in self._holds

    def release(self, hold: Hold) -> None:
        """The resume of C{hold} is over (replayed, or given up)."""
        if self._holds.get(hold.conn.user_id) is hold:
            del self._holds[hold.conn.user_id]

    def forget(self, user: str) -> None:
        """C{user} left this daemon."""
        self._holds.pop(user, None)

    # Outcomes

    def awaiting(self, message: Numbered) -> None:
        """The sender of C{message} hears its echo only once its outcome is L{settled}."""
        self._echoes[(message.sender, message.create_time)] = []

    def settled(self, message: Numbered, before: Push | None = None) -> None:
        """
        The outcome of C{message} is known: send C{before} (what its
        sender must hear first, if anything), then the echoes held.
        """
        echoes = self._echoes.pop((message.sender, message.create_time), ())
        if before is not None:
            self.send(message.sender, before)
        for echo in echoes:
            if isinstance(echo, Waiting):
                echo.ready = True
                self._let_go(echo.line)
            else:
                self.send(message.sender, echo)

    def unnumbered(self, users: Collection[str], message: Numbered) -> None:
        """
        C{message}, which the store could not take, to C{users} here --
        its sender's echo once its outcome is L{settled}.
        """
        echoes = self._echoes.get((message.sender, message.create_time))
        if echoes is not None and message.sender in users:
            echoes.append(message)
            users = [user for user in users if user != message.sender]
        self.fan_out(users, message)

    def without_store(self, message: Numbered) -> None:
        """Remember that C{message} is delivered here without the store."""
        now = self._seconds()
        memory = self._without_store
        while memory and next(iter(memory.values())) <= now:
            del memory[next(iter(memory))]
        memory[(message.sender, message.create_time)] = now + FALLBACK_MEMORY

    def had_without_store(self, message: Numbered) -> bool:
        """Whether C{message} was delivered here already, the store having failed."""
        return bool(self._without_store) and (
            (message.sender, message.create_time) in self._without_store)

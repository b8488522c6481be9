"""
The connections of this daemon and every way the hub sends to them: to
one connection, to many (framed once), to a user wherever it is (here, or
through the peers). Also the one place store work is accounted for:
timed, traced, and its failure logged and reported.
"""

import time
from typing import NamedTuple

from msgspec.structs import replace
from twisted.internet.defer import gatherResults, succeed
from twisted.logger import Logger

from aleatoria.domain.clock import format_ns
from aleatoria.domain.ports import Refused, StoreUnavailable, Unavailable
from aleatoria.edge.wire import SYSTEM, from_server

FAILED = object()
"""What a watched Deferred fires with when its work failed (and was dealt with)."""

CALL_EVENTS = frozenset({"assign_role", "hangup"})
"""What a user is sent when a call of its starts or ends, wherever that happened."""

MAX_HISTORY_PAGE = 100
"""The most messages one history request returns, whatever C{limit} asks."""

FALLBACK_MEMORY = 300
"""
Seconds a message delivered here without the store is remembered: if the
store took it after all (a command that timed out, then ran), its numbered
copy is not delivered here a second time. A message is known by its
sender, its C{messageId} and its C{createTime}, stamped once per message:
a later message that reuses the C{messageId} is another message.
"""


class Outcome(NamedTuple):
    """What became of a chat message: what may have failed, and if the addressee is online."""

    failed: list
    online: bool = True


class Outbox:
    """
    @param prepare: turns an L{Envelope} into what L{IConnection.send}
        takes; called once per distinct message, however many recipients.
    @param message_clock: a L{aleatoria.clock.MessageClock} for C{createTime}.
    @param peers: the L{aleatoria.interfaces.IPeers}.
    @param reporter: the L{aleatoria.reporting.Reporter}.
    @param metrics: the L{aleatoria.metrics.Metrics}.
    @param store_kind: the store's name, for the operations reported.
    """

    _log = Logger(namespace="aleatoria.domain.hub.Hub")

    def __init__(self, prepare, message_clock, peers, reporter, metrics, store_kind):
        self.connections = {}
        """Each connected user's L{IConnection}."""
        self.trace = None
        """The trace of the client message being handled, if any."""
        self._call_watchers = []
        self._awaiting = {}
        """Stream -> users whose first live message of it is still to come."""
        self._first = {}
        """User -> {stream: the first offset it had live since it joined}."""
        self.resumes = {}
        """User -> its L{aleatoria.hub.resume.Resume} under way."""
        self._fell_back = {}
        self._prepare = prepare
        self._clock = message_clock
        self.peers = peers
        self._reporter = reporter
        self._metrics = metrics
        self._store_kind = store_kind

    def watch_calls(self, watcher):
        """Call C{watcher(user, envelope)} for each CALL_EVENTS message sent to a user here."""
        self._call_watchers.append(watcher)

    def current(self, conn):
        """Whether C{conn} is its user's connection (not replaced, not gone)."""
        return self.connections.get(conn.user_id) is conn

    def now(self):
        return format_ns(self._clock.next_ns())

    def next_ns(self):
        return self._clock.next_ns()

    # Sending

    def send(self, conn, envelope):
        self._metrics.sent.labels(envelope.type).inc()
        if envelope.type in CALL_EVENTS:
            for watcher in self._call_watchers:
                watcher(conn.user_id, envelope)
        conn.send(self._prepare(envelope))

    def fan_out(self, users, envelope):
        """
        Send one message to many users, prepared once for all of them --
        except the server's own (presence), which name each recipient in
        C{toUser}, as docs/protocol.rst has it.
        """
        if not users:
            return
        self._metrics.sent.labels(envelope.type).inc(len(users))
        if envelope.fromUser == SYSTEM:
            for user in users:
                self.connections[user].send(self._prepare(replace(envelope, toUser=user)))
            return
        prepared = self._prepare(envelope)
        for user in users:
            self.connections[user].send(prepared)

    def deliver(self, user, envelope):
        """
        Send to C{user}, here or on another daemon; fire with whether it is
        connected anywhere (errback when the peers could not be reached).
        """
        conn = self.connections.get(user)
        if conn is not None:
            self.send(conn, envelope)
            return succeed(True)
        return self.timed(self.peers.deliver(user, envelope), "deliver")

    # Streams

    def post_room(self, room, envelope, at_ns):
        return self.timed(self.peers.post_room(room, envelope, at_ns), "post_room")

    def post_direct(self, sender, recipient, envelope):
        return self.timed(self.peers.post_direct(sender, recipient, envelope), "post_direct")

    def stream(self, key, users, envelope):
        """
        Send a numbered message of stream C{key} to C{users} here, except to
        those resuming it (their L{Resume} holds it until the replay is
        done); note it as the first of the stream for users who joined it
        and had none yet.
        """
        waiting = self._awaiting.pop(key, None)
        if waiting:
            for user in waiting:
                self._first.setdefault(user, {})[key] = envelope.offset
        if self.resumes:
            users = [user for user in users if not self._held(user, key, envelope)]
        self.fan_out(users, envelope)

    def _held(self, user, key, envelope):
        resume = self.resumes.get(user)
        return resume is not None and resume.hold(key, envelope)

    def expect_first(self, user, key):
        """C{user} joined stream C{key}: note the first offset it will have live."""
        self._awaiting.setdefault(key, set()).add(user)

    def first(self, user, key):
        """The first offset of C{key} C{user} had live since it joined, or C{None}."""
        return self._first.get(user, {}).get(key)

    def forget_first(self, user, key):
        waiting = self._awaiting.get(key)
        if waiting is not None:
            waiting.discard(user)
            if not waiting:
                del self._awaiting[key]
        firsts = self._first.get(user)
        if firsts is not None:
            firsts.pop(key, None)
            if not firsts:
                del self._first[user]

    def fell_back(self, envelope):
        """Whether C{envelope} was delivered here already, the store having failed."""
        return bool(self._fell_back) and _fallback_key(envelope) in self._fell_back

    def falling_back(self, envelope):
        """Remember that C{envelope} is delivered here without the store."""
        now = time.monotonic()
        # oldest first: forget what has expired, never copying the rest
        while self._fell_back and next(iter(self._fell_back.values())) <= now:
            del self._fell_back[next(iter(self._fell_back))]
        self._fell_back[_fallback_key(envelope)] = now + FALLBACK_MEMORY

    def broadcast(self, room, envelope):
        """Send to the members of C{room} on the other daemons (a Deferred)."""
        return self.timed(self.peers.broadcast(room, envelope), "broadcast")

    def notify(self, user, envelope):
        """Deliver where no client waits for the outcome (L{FAILED} if it failed)."""
        return self.watch(self.deliver(user, envelope), "deliver", timed=False)

    def system(self, kind, to_user, payload, room="", message_id=""):
        """A message the server originates."""
        return from_server(kind, to_user, payload, self.now(), room, message_id)

    def reply(self, conn, kind, payload, room="", message_id=""):
        self.send(conn, self.system(kind, conn.user_id, payload, room, message_id))

    # Accounting

    def timed(self, d, operation):
        """Time C{d}, work of the store or the peers: a metric, and a span of the trace."""
        self._metrics.time_store(operation, d)
        if self.trace is not None:
            self.trace.span(operation, d)
        return d

    def watch(self, d, operation, conn=None, asked=False, timed=True):
        """
        Time C{d} unless it is L{timed} already; log and report its failure
        -- in C{conn}'s scope when there is one; an outage is reported by
        the store, once for all. Returns C{d}, which then fires with
        L{FAILED} instead of failing -- or, when a client C{asked} for the
        work and waits for the answer, fails with L{Unavailable}. A
        L{Refused} passes through: it was dealt with.
        """
        if timed:
            self.timed(d, operation)

        def failed(failure):
            if failure.check(Refused):
                return failure
            if not failure.check(StoreUnavailable):
                report = conn.report if conn is not None else self._reporter.daemon
                report.failed(
                    self._log, failure, f"Store operation {operation} failed",
                    operation=f"{self._store_kind}_{operation}", component="store",
                )
            if asked:
                raise Unavailable("That is unavailable right now; try again later.")
            return FAILED

        return d.addErrback(failed)


def _fallback_key(envelope):
    """What tells one message from any other, its numbered copy included (L{FALLBACK_MEMORY})."""
    return envelope.fromUser, envelope.messageId, envelope.createTime


def all_done(deferreds):
    """Fire with L{FAILED} if any of the (watched) C{deferreds} did, else C{None}."""
    d = gatherResults(deferreds, consumeErrors=True)
    return d.addCallback(lambda results: FAILED if FAILED in results else None)


def as_seen_by(user, messages):
    """History entries, each marked C{incoming} unless C{user} sent it."""
    return [replace(m, incoming=m.fromUser != user) for m in messages]

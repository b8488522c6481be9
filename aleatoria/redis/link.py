"""
txredisapi as Aleatoria uses it: the one place that changes its behaviour.

txredisapi runs AUTH and SELECT itself when a connection opens and, when
either fails -- a reply timeout from a Redis paused for a few seconds
included -- calls C{stopTrying()}: that connection never comes back. Here
the handshake is ours instead: AUTH, SELECT, a check that this Redis is
the primary (a replica, or an old primary a failover left behind, would
refuse or lose our writes), then loading the scripts (the command link)
or subscribing (the pub/sub link), under one timeout. Any failure drops
that connection, which is tried again after a capped, jittered backoff,
for as long as the daemon runs.

txredisapi's own reply timeout would abort the connection -- every user's
commands with it -- for one slow reply; it is off. A command's caller
times it out (L{aleatoria.redis.connection}), its late reply is dropped,
and a PING with its own timeout finds out whether the connection is dead.

Everything here that touches txredisapi's internals (the pool, the
protocol's connect hook, the script cache) is pinned by
C{tests/integration/test_txredis.py}.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterable
from typing import Any

import txredisapi
from twisted.internet.defer import Deferred, TimeoutError, fail, gatherResults, succeed
from twisted.internet.interfaces import IReactorTime, IStreamClientEndpoint
from twisted.logger import Logger
from twisted.python.failure import Failure

LinkPlace = tuple[IStreamClientEndpoint | None, str, dict[str, Any]]
"""
Where Redis is and how to log in, as L{Link} takes it: the endpoint (C{None}
behind sentinels, whose own endpoint asks them), C{host:port}, and keywords.
"""

FIRST_RETRY = 0.05
"""Seconds before the first reconnection attempt (then doubling, capped)."""


def backoff(attempt: int, cap: float, rng: Callable[[], float] = random.random) -> float:
    """
    Seconds to wait before reconnection attempt number C{attempt} (from 1):
    doubling from L{FIRST_RETRY} up to C{cap}, each drawn from the upper
    half of that so daemons that lost Redis together do not return in step.
    """
    ceiling = min(cap, FIRST_RETRY * 2 ** min(attempt - 1, 30))
    return ceiling * (0.5 + rng() / 2)


class _Handshake:
    """Our connect handshake, for a txredisapi protocol class."""

    def connectionMade(self):
        link = self.factory.link
        self.transport.setTcpNoDelay(True)
        d = succeed(None)
        if link.password:
            d.addCallback(lambda _: self.auth(link.password, link.username or None))
        if link.db:
            d.addCallback(lambda _: self.select(link.db))
        if link.primary:
            d.addCallback(lambda _: self._primary(link))
        d.addCallback(lambda _: self._prepare(link))
        d.addTimeout(link.timeout, link.reactor)
        d.addCallbacks(self._greeted, self._refused, errbackArgs=(link,))

    def _primary(self, link):
        """
        Refuse a Redis that is not the primary; note the era of the one
        that is: its run (a restart) and its replication history (a
        promotion) -- writes of another era may have been lost.
        """
        d = self.execute_command("INFO", "replication")

        def replication(info):
            found = _fields(info)
            if found.get("role") != "master":
                raise NotPrimary(f"not the primary: role:{found.get('role', '')}")
            d = self.execute_command("INFO", "server")
            return d.addCallback(lambda server: _era(_fields(server).get("run_id", ""),
                                                     found.get("master_replid", "")))

        return d.addCallback(replication).addCallback(link.reached)

    def _greeted(self, _):
        """
        txredisapi's own connectionMade, with no password or database left
        to set, only marks the connection usable and hands it to the pool.
        """
        super().connectionMade()

    def _refused(self, failure, link):
        """
        Any failure -- an error reply (txredisapi raises those, AUTH's
        WRONGPASS included), the timeout, a lost connection -- drops this
        connection; its slot connects again after the backoff.
        """
        link.refused(failure.getErrorMessage())
        if self.connected:
            self.transport.abortConnection()


class _CommandProtocol(_Handshake, txredisapi.RedisProtocol):
    def _prepare(self, link):
        """Load the scripts, so that every script call is an EVALSHA."""
        d = gatherResults([self.script_load(s.source) for s in link.scripts], consumeErrors=True)
        d.addErrback(lambda failure: failure.value.subFailure)
        d.addCallback(lambda _: self.script_hashes.update(s.sha for s in link.scripts))
        return d

    def run_script(self, script, args):
        """
        txredisapi's C{eval} of a L{Script}, whose hash is known: its own
        encodes and hashes the whole source (10 KB or so, with the
        library) at every call. EVALSHA, or EVAL when this Redis lacks it.
        """
        if script.sha in self.script_hashes:
            return self.evalsha(script.sha, [], args).addErrback(
                self._evalsha_failed, script.source, script.sha, [], args)
        return self._eval(script.source, script.sha, [], args)


class Script:
    """A Lua script as sent: its source, encoded, and its SHA1 (what EVALSHA names)."""

    def __init__(self, source: str) -> None:
        self.source = source.encode()
        self.sha = _sha1(source)


class _SubscriberProtocol(_Handshake, txredisapi.SubscriberProtocol):
    def _prepare(self, link):
        """Subscribe to one channel at a time: each reply then answers its command."""
        d = succeed(None)
        for channel in link.channels:
            d.addCallback(lambda _, channel=channel: self.subscribe(channel))
        return d

    def messageReceived(self, pattern, channel, message):
        self.factory.link.on_message(message)


def _sha1(script: str) -> str:
    return hashlib.sha1(script.encode()).hexdigest()


class NotPrimary(Exception):
    """The Redis reached is a replica (or a demoted primary): not where writes go."""


def _fields(info: str | bytes) -> dict[str, str]:
    """An INFO reply as a dict."""
    if isinstance(info, bytes):
        info = info.decode()
    return dict(line.split(":", 1) for line in info.splitlines() if ":" in line)


def _era(run_id: str, replid: str) -> str:
    """A short tag that changes whenever the primary restarts or another is promoted."""
    return hashlib.sha1(f"{run_id}:{replid}".encode()).hexdigest()[:8]


class _Factory(txredisapi.RedisFactory):
    """One connection, our handshake, our backoff; tells the link of changes."""

    def __init__(self, link, protocol):
        super().__init__(uuid=None, dbid=None, poolsize=1, isLazy=True,
                         convertNumbers=False, replyTimeout=None)
        self.protocol = protocol
        self.link = link

    def retryDelay(self, attempt):
        return backoff(attempt, self.link.retry_max)

    def addConnection(self, conn):
        super().addConnection(conn)
        if conn in self.pool:
            self.link.changed(True)

    def delConnection(self, conn):
        super().delConnection(conn)
        if not self.size:
            self.link.changed(False)


class Link:
    """
    One connection to Redis that never gives up: the command link (with
    C{scripts}) or the pub/sub link (with C{channels} and C{on_message}).

    @param on_change: called with C{True} when the connection is usable
        again, C{False} when it is lost.
    @param retry_max: the longest wait between reconnection attempts.
    @param primary: whether the server must be the primary (not so for a
        sentinel).
    @param on_refusal: called with the reason a handshake failed, instead
        of this link saying it (the sentinels say it once for all).
    """

    _log = Logger()

    def __init__(self, endpoint: IStreamClientEndpoint | None, where: str, reactor: IReactorTime, *,
                 timeout: float, retry_max: float = 1.0, username: str | None = None,
                 password: str | None = None, db: int = 0, scripts: Iterable[Script] = (),
                 channels: Iterable[str] = (),
                 on_message: Callable[[bytes | str], object] | None = None,
                 on_change: Callable[[bool], object] | None = None, primary: bool = True,
                 on_refusal: Callable[[str], object] | None = None) -> None:
        self._where = where
        self.primary = primary
        self.era = ""
        """The era of the primary last reached (see L{_Handshake._primary})."""
        self._on_refusal = on_refusal
        self.reactor = reactor
        self.timeout = timeout
        self.retry_max = retry_max
        self.username = username
        self.password = password
        self.db = db
        self.scripts = tuple(scripts)
        self.channels = tuple(channels)
        self.on_message = on_message
        self._on_change = on_change
        self.endpoint = endpoint
        self._refusal: str | None = None
        self._leaving: object = None
        self._probing = False
        self.up = False
        protocol = _SubscriberProtocol if channels else _CommandProtocol
        self._factory = _Factory(self, protocol)
        self.handler = self._factory.handler
        """Where commands go: txredisapi's connection handler."""

    @property
    def where(self) -> str:
        """C{host:port} of the server: the one last asked for, when the endpoint asks."""
        return getattr(self.endpoint, "address", None) or self._where

    def start(self) -> None:
        self._factory.startConnecting(self.endpoint)

    def stop(self) -> Deferred[None]:
        """Close the connection for good; fires once it is closed."""
        return self._factory.disconnect()

    def changed(self, up: bool) -> None:
        if up == self.up:
            return
        self.up = up
        if up and self._refusal is not None:
            self._log.info("Redis at {where} accepts us again", where=self.where)
            self._refusal = None
        if self._on_change is not None:
            self._on_change(up)

    def command(self, method: str, *args: object) -> Deferred[Any]:
        """
        Send a command: the txredisapi protocol's C{method}, on the open
        connection. (txredisapi's handler finds the connection through an
        inlineCallbacks generator and two more Deferreds per command -- a
        quarter of a relay's CPU on Redis, py-spy.) With none open, the
        handler waits for one.
        """
        pool = self._factory.pool
        if pool and pool[0].connected:
            try:
                return getattr(pool[0], method)(*args)  # type: ignore[no-any-return]
            except Exception:  # as the handler would: a failed Deferred, not a raise
                return fail()
        return getattr(self.handler, method)(*args)  # type: ignore[no-any-return]

    def reached(self, era: str) -> None:
        self.era = era

    def move(self, address: str | None = None) -> None:
        """
        The primary moved (to C{address}, when known): drop the connection,
        unless it is there already; the next attempt asks where it went.
        A subscriber unsubscribes first -- its own channel first -- so that
        what was published to it before is read, and what is published
        after counts it as not listening (never a post lost unsaid).
        """
        if not self._factory.pool or (address is not None and address == self.where):
            return
        connection = self._factory.pool[0]
        if connection is self._leaving:
            return
        self._leaving = connection
        self._log.info("Leaving Redis at {where}: it is no longer the primary",
                       where=self.where)
        d: Deferred[Any] = succeed(None)
        for channel in reversed(self.channels):
            # a default binds the loop's channel: Twisted's types take it for an argument
            d.addCallback(  # type: ignore[call-overload]
                lambda _, channel=channel: connection.unsubscribe(channel))
        d.addTimeout(self.timeout, self.reactor)
        d.addBoth(lambda _: connection.transport.abortConnection())

    def refused(self, why: str) -> None:
        """The handshake failed: say why once, not at every retry."""
        if self._on_refusal is not None:
            self._on_refusal(why)
        elif why != self._refusal:
            self._refusal = why
            self._log.warn(
                "Redis at {where} did not complete our handshake ({why}); "
                "retrying at most every {retry}s", where=self.where, why=why,
                retry=self.retry_max,
            )

    def ping(self) -> Deferred[object]:
        """
        PING on this connection (allowed while subscribed, too), with its
        own timeout: a connection that does not answer in time silently
        died, or its Redis hangs, and is aborted; it reconnects.
        """
        if not self._factory.pool:
            return succeed(None)
        connection = self._factory.pool[0]
        d = connection.execute_command("PING")
        d.addTimeout(self.timeout, self.reactor)
        return d.addErrback(self._unanswered, connection)

    def _unanswered(self, failure: Failure, connection: Any) -> Failure:
        if failure.check(TimeoutError) and connection.connected:
            self._log.warn("Redis at {where} did not answer a PING in {timeout:g} s; "
                           "reconnecting", where=self.where, timeout=self.timeout)
            connection.transport.abortConnection()
        return failure

    def probe(self) -> None:
        """
        A command timed out: a slow reply, or a dead connection? L{ping}
        (unless a ping is under way already), which tells them apart.
        """
        if self._probing:
            return
        self._probing = True
        self.ping().addBoth(self._probed)

    def _probed(self, result: object) -> None:
        self._probing = False

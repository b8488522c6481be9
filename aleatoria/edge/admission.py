"""
Who may hold a connection to a port, from its first byte to its last: a
client address may try C{--connect-rate} connections a second (bursts of
C{--connect-burst}) and hold at most C{--max-connections-per-ip}, pending
requests included -- one L{Admission} counts both, for a client that
connects directly (counted by the L{Gate} at its first byte) and for one
behind a trusted proxy (counted by its handshake, once X-Forwarded-For
names it). And a connection must reach what it came for within a
deadline however slowly it trickles its request in (twisted.web's own
timeout starts again with every byte): on the clients' port that is
becoming a WebSocket, within C{--handshake-timeout} of arriving; on the
API and metrics ports, each request in whole within as long of its first
byte.

Each connection gets a L{Ticket}: the HTTP channel holds it, and the
WebSocket takes it over when the connection becomes one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from http import HTTPStatus
from ipaddress import IPv4Network, IPv6Network
from typing import TYPE_CHECKING

from autobahn.websocket.types import ConnectionDeny
from twisted.internet.protocol import Protocol
from twisted.logger import Logger

from aleatoria.edge.handshake import direct_address
from aleatoria.edge.limits import PerAddress, TooMany
from aleatoria.ops.budgets import Summary

if TYPE_CHECKING:
    from twisted.internet.interfaces import IAddress, IDelayedCall, IReactorTime
    from twisted.web.http import HTTPChannel

    from aleatoria.domain.limits import KeyedBuckets

CUT_OFFS_WINDOW = 10
"""Seconds over which connections cut off from one peer are summed up in one line."""

GUARDS = (
    (b"X-Content-Type-Options", b"nosniff"),
    (b"Content-Security-Policy",
     b"default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
)
"""
Headers of every answer: no browser guesses a type other than the one
sent, and nothing an answer shows (an error page) may load, run, embed,
post or be framed. The demo's pages set a policy of their own.
"""


def refusal(status: int, kind: bytes, body: bytes,
            headers: Iterable[tuple[bytes, bytes]] = ()) -> bytes:
    """
    The bytes of a whole answer sent in place of reading a request (or the
    rest of it); the connection closes after it.
    """
    lines = [b"HTTP/1.1 %d %s" % (status, HTTPStatus(status).phrase.encode()),
             b"Content-Type: " + kind, b"Content-Length: %d" % len(body), b"Connection: close"]
    lines += [b"%s: %s" % pair for pair in (*headers, *GUARDS)]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def _too_many(what: bytes) -> bytes:
    return refusal(429, b"application/json",
                   b'{"error": "too many %s from your address", "code": "rate_limited"}' % what)


TOO_MANY = _too_many(b"connections")
TOO_FAST = _too_many(b"connection attempts")


class Ticket:
    """
    One connection's place at the gate: its count, and its deadline. On
    the clients' port the deadline runs from the connection's first byte
    until it is a WebSocket; where requests are answered over HTTP (API,
    metrics), it runs for each request from its first byte until it is in
    whole, and not while it is answered or while the connection waits
    idle for the next (twisted.web's idle timeout ends that).
    """

    def __init__(self, gate: Gate, peer: str, address: str | None, channel: HTTPChannel) -> None:
        self._gate = gate
        self._peer = peer
        self._address = address
        self._channel: HTTPChannel | None = channel
        self._answering = False
        self._deadline: IDelayedCall | None = None
        self._start()

    def _start(self) -> None:
        self._deadline = self._gate.clock.callLater(self._gate.deadline, self._expired)

    def _stop(self) -> None:
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        self._gate.cut_off(self._peer)
        transport = self._channel.transport  # type: ignore[union-attr]  # a deadline: a channel
        if transport is not None:
            transport.abortConnection()  # type: ignore[union-attr]  # a TCP (or TLS) one

    def upgraded(self) -> None:
        """The connection is a WebSocket now: no more deadline."""
        self._channel = None
        self._stop()

    def reading(self) -> None:
        """Bytes of a request came: its deadline runs, unless it already does."""
        if self._deadline is None and self._channel is not None and not self._answering:
            self._start()

    def answering(self) -> None:
        """The request is in whole: no deadline while it is answered."""
        self._answering = True
        self._stop()

    def answered(self) -> None:
        """Its answer is out: the next request's deadline starts with its first byte."""
        self._answering = False

    def release(self) -> None:
        """The connection is gone (called once or more)."""
        self._channel = None
        self._stop()
        if self._address is not None:
            self._gate.admission.count_out(self._address)
            self._address = None


class _Refuse(Protocol):
    """Says 429 at once, without reading the request, and hangs up."""

    def __init__(self, answer: bytes) -> None:
        self._answer = answer

    def connectionMade(self) -> None:
        self.transport.write(self._answer)  # type: ignore[union-attr]  # connected: it has one
        self.transport.loseConnection()  # type: ignore[union-attr]  # likewise


class Admission:
    """
    Connections and connection attempts per client address, for a port.

    @param maximum: connections one client address may hold.
    @param attempts: the L{aleatoria.domain.limits.KeyedBuckets} of
        connection attempts per address.
    @param trusted: the networks of trusted proxies, whose connections are
        not counted as theirs (their clients are, once X-Forwarded-For
        says who).
    """

    def __init__(self, maximum: int, attempts: KeyedBuckets,
                 trusted: tuple[IPv4Network | IPv6Network, ...] = ()) -> None:
        self.per_address = PerAddress(maximum)
        self.attempts = attempts
        self.trusted = trusted

    def direct(self, peer: str) -> str | None:
        """The address to count for a connection from C{peer}; C{None} for a proxy's."""
        return direct_address(peer, self.trusted)

    def count_in(self, address: str) -> bytes | None:
        """
        One more connection from C{address}: C{None}, or what refuses it
        (L{TOO_FAST}, L{TOO_MANY}).
        """
        if self.attempts.delay(address):
            return TOO_FAST
        try:
            self.per_address.count_in(address)
        except TooMany:
            return TOO_MANY
        return None

    def count_out(self, address: str) -> None:
        self.per_address.count_out(address)

    def admit_proxied(self, address: str) -> None:
        """
        One more connection of a client behind a trusted proxy, counted as
        its own.

        @raise ConnectionDeny: 429 when the address is over its rate or holds
            all the connections it may.
        """
        if self.attempts.delay(address):
            raise ConnectionDeny(429, "too many connection attempts from your address")
        try:
            self.per_address.count_in(address)
        except TooMany:
            raise ConnectionDeny(429, "too many connections from your address") from None


class Gate:
    """
    @param admission: the L{Admission} of the port.
    @param deadline: seconds a connection has to become a WebSocket (or a
        request to come in whole: see L{Ticket}).
    @param awaited: what the deadline waits for, as the log names it.
    """

    log = Logger()

    def __init__(self, *, admission: Admission, deadline: float, clock: IReactorTime,
                 awaited: str = "WebSocket") -> None:
        self.admission = admission
        self.deadline = deadline
        self.clock = clock
        self._awaited = awaited
        self._cut_offs = Summary(clock, CUT_OFFS_WINDOW, self._more_cut_off)

    def cut_off(self, peer: str) -> None:
        """Say a connection from C{peer} was cut off -- once a window per peer."""
        if self._cut_offs.first(peer):
            self.log.info("Cut off {peer}: no {awaited} within {seconds:g} s",
                          peer=peer, awaited=self._awaited, seconds=self.deadline)

    def _more_cut_off(self, peer: str, count: int) -> None:
        self.log.info("Cut off {count} more connections from {peer} in the last {seconds} s",
                      count=count, peer=peer, seconds=CUT_OFFS_WINDOW)

    def admit(self, addr: IAddress, build: Callable[[], HTTPChannel]) -> Protocol:
        """
        The protocol for a connection from C{addr}: C{build()}'s, holding
        its L{Ticket} as C{ticket} -- or one that answers 429.
        """
        peer = getattr(addr, "host", "")
        address = self.admission.direct(peer)
        if address is not None:
            refused = self.admission.count_in(address)
            if refused is not None:
                return _Refuse(refused)
        channel = build()
        # the site's channels hold it (aleatoria.http.channels)
        channel.ticket = Ticket(  # type: ignore[attr-defined]
            self, address or peer, address, channel)
        return channel

"""
The door of the port, for each TCP connection from its first byte to its
last, whether it stays HTTP or becomes a WebSocket: a client address (not
a trusted proxy's) may try C{--connect-rate} connections a second (bursts
of C{--connect-burst}) and hold at most C{--max-connections-per-ip},
pending handshakes included; and a connection that has not
become a WebSocket within C{--handshake-timeout} of arriving is cut off,
however slowly it trickles its request in (twisted.web's own timeout
starts again with every byte).

Each connection gets a L{Ticket}: the HTTP channel holds it, and hands it
to the WebSocket when the connection becomes one.
"""

from twisted.internet.protocol import Protocol
from twisted.logger import Logger

from .handshake import direct_address
from .limits import PerAddress, Summary, TooMany

CUT_OFFS_WINDOW = 10
"""Seconds over which connections cut off from one peer are summed up in one line."""


def _too_many(what):
    body = b'{"error": "too many %s from your address", "code": "rate_limited"}' % what
    return (b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n"
            b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))


TOO_MANY = _too_many(b"connections")
TOO_FAST = _too_many(b"connection attempts")


class Ticket:
    """One connection's place at the gate: its count, and its deadline."""

    def __init__(self, gate, peer, address, channel):
        self._gate = gate
        self._peer = peer
        self._address = address
        self._channel = channel
        self._deadline = gate.clock.callLater(gate.deadline, self._expired)

    def _expired(self):
        self._gate.cut_off(self._peer)
        transport = self._channel.transport
        if transport is not None:
            transport.abortConnection()

    def upgraded(self):
        """The connection is a WebSocket now: no more deadline."""
        self._channel = None
        if self._deadline.active():
            self._deadline.cancel()

    def release(self):
        """The connection is gone (called once or more)."""
        if self._deadline.active():
            self._deadline.cancel()
        if self._address is not None:
            self._gate.per_address.count_out(self._address)
            self._address = None


class _Refuse(Protocol):
    """Says 429 at once, without reading the request, and hangs up."""

    def __init__(self, answer):
        self._answer = answer

    def connectionMade(self):
        self.transport.write(self._answer)
        self.transport.loseConnection()


class Gate:
    """
    @param maximum: connections one client address may hold.
    @param trusted: the networks of trusted proxies, whose connections are
        not counted here (their clients are, once X-Forwarded-For says who).
    @param deadline: seconds a connection has to become a WebSocket.
    @param attempts: the L{KeyedBuckets} of connection attempts per address
        (shared with the protocol, which counts clients behind proxies).
    """

    log = Logger()

    def __init__(self, *, maximum, trusted, deadline, clock, attempts):
        self.per_address = PerAddress(maximum)
        self.attempts = attempts
        self.trusted = trusted
        self.deadline = deadline
        self.clock = clock
        self._cut_offs = Summary(clock, CUT_OFFS_WINDOW, self._more_cut_off)

    def cut_off(self, peer):
        """Say a connection from C{peer} was cut off -- once a window per peer."""
        if self._cut_offs.first(peer):
            self.log.info("Cut off {peer}: no WebSocket within {seconds:g} s",
                          peer=peer, seconds=self.deadline)

    def _more_cut_off(self, peer, count):
        self.log.info("Cut off {count} more connections from {peer} in the last {seconds} s",
                      count=count, peer=peer, seconds=CUT_OFFS_WINDOW)

    def admit(self, addr, build):
        """
        The protocol for a connection from C{addr}: C{build()}'s, holding
        its L{Ticket} as C{ticket} -- or one that answers 429.
        """
        peer = getattr(addr, "host", "")
        address = direct_address(peer, self.trusted)
        if address is not None:
            if self.attempts.take(address):
                return _Refuse(TOO_FAST)
            try:
                self.per_address.count_in(address)
            except TooMany:
                return _Refuse(TOO_MANY)
        channel = build()
        channel.ticket = Ticket(self, address or peer, address, channel)
        return channel

"""
The whole daemon in memory: L{make_service} on a L{MemoryReactorClock},
its sites' connections pumped by L{twisted.test.iosim} -- no socket, no
wall clock. Timeouts (handshake, idle, stalls) run when a test advances
C{clock}, as Twisted and the magic-wormhole servers test theirs.

Autobahn sets its timers (pings, handshakes) through txaio's loop, not
the factory's reactor: while a L{Daemon} runs, that loop is its clock.
"""

import json

import txaio
from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet.address import IPv4Address
from twisted.internet.protocol import Protocol
from twisted.internet.testing import MemoryReactorClock
from twisted.test.iosim import FakeTransport, connect

from aleatoria.daemon.service import make_service

ORIGIN = "http://test.example"


class Daemon:
    """A started daemon on a fake reactor; C{clock} is its time."""

    def __init__(self, config):
        self.clock = MemoryReactorClock()
        self._loop, txaio.config.loop = txaio.config.loop, self.clock
        self.service = make_service(config, self.clock)
        self.service.startService()
        self.hub = self.service.getServiceNamed("hub")

    def site(self, name="listener"):
        """The factory that serves the port of the listener called C{name}."""
        return self.service.getServiceNamed(name).factory

    def open(self, protocol, address="10.0.0.1", listener="listener"):
        """Connect C{protocol} from C{address} to a listener's site: the pump that moves bytes."""
        server = self.site(listener).buildProtocol(IPv4Address("TCP", address, 40000))
        here = IPv4Address("TCP", "127.0.0.1", 8085)
        there = IPv4Address("TCP", address, 40000)
        return connect(server, FakeTransport(server, True, here, there),
                       protocol, FakeTransport(protocol, False, there, here),
                       greet=True, clock=self.clock)

    def websocket(self, user, room="Lobby", address="10.0.0.1", answer_pings=True):
        """A WebSocket client of C{user}, handshake done: C{(client, pump)}."""
        url = f"ws://127.0.0.1:8085/ws?userId={user}&room={room}"
        factory = WebSocketClientFactory(url, origin=ORIGIN, reactor=self.clock)
        factory.protocol = Client
        client = factory.buildProtocol(None)
        client.answer_pings = answer_pings
        pump = self.open(client, address)
        pump.flush()
        return client, pump

    def http(self, request, address="10.0.0.1", listener="listener"):
        """Send raw bytes of a request; the raw answer so far, and the pump."""
        client = Raw()
        pump = self.open(client, address, listener)
        client.transport.write(request)
        pump.flush()
        return client, pump

    def stop(self):
        self.service.stopService()
        self.clock.advance(60)
        txaio.config.loop = self._loop


class Client(WebSocketClientProtocol):
    """Keeps every message it is sent, decoded; closes with its code recorded."""

    answer_pings = True

    def __init__(self):
        super().__init__()
        self.received = []
        self.closed = None

    def onMessage(self, payload, isBinary):
        self.received.append(json.loads(payload))

    def onPing(self, payload):
        if self.answer_pings:
            super().onPing(payload)

    def onClose(self, wasClean, code, reason):
        self.closed = (code, reason)

    def send(self, message):
        self.sendMessage(json.dumps(message).encode())

    def kinds(self):
        return [m["type"] for m in self.received]


class Raw(Protocol):
    """Bytes in, bytes kept."""

    def __init__(self):
        self.data = b""
        self.lost = False

    def dataReceived(self, data):
        self.data += data

    def connectionLost(self, reason):
        self.lost = True

    def status(self):
        return int(self.data.split(b" ", 2)[1]) if self.data else None

    def body(self):
        return self.data.partition(b"\r\n\r\n")[2]

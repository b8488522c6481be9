"""
A real WebSocket client for the tests: Autobahn over TCP, with an inbox
the test reads in order, so a test sees every message, expected or not.
"""

import json
from pathlib import Path

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, wrapClientTLS
from twisted.internet.ssl import Certificate, optionsForClientTLS

WAIT = 10.0
"""Seconds before a wait is declared a failure; nothing relies on it passing."""


class _Protocol(WebSocketClientProtocol):
    def onOpen(self):
        self.factory.client._opened(self)

    def onMessage(self, payload, isBinary):
        self.factory.client._received(json.loads(payload))

    def onClose(self, wasClean, code, reason):
        self.factory.client._closed(code, reason)


class Client:
    """One user's connection, and what it has received."""

    def __init__(self, user):
        self.user = user
        self.inbox = []
        self.close_code = None
        self.close_reason = None
        self.ice_servers = None
        """The C{ice_servers} message the connection opened with."""
        self._protocol = None
        self._waiting = None
        self._open = Deferred()
        self._gone = Deferred()

    async def _take_ice_servers(self):
        """
        Every connection is sent C{ice_servers} as it opens (after any
        C{welcome}): kept apart, as C{ice_servers}, so that the tests read
        the inbox as before.
        """
        while not any(m["type"] == "ice_servers" for m in self.inbox):
            if self._gone.called:
                return
            self._waiting = Deferred()
            await self._waiting.addTimeout(WAIT, reactor)
        first = next(m for m in self.inbox if m["type"] == "ice_servers")
        self.inbox.remove(first)
        self.ice_servers = first

    def _opened(self, protocol):
        self._protocol = protocol
        self._open.callback(self)

    def _received(self, message):
        self.inbox.append(message)
        self._wake()

    def _closed(self, code, reason):
        self.close_code, self.close_reason = code, reason
        if not self._open.called:
            self._open.errback(ConnectionError(f"handshake failed: {reason}"))
        self._gone.callback((code, reason))
        self._wake()

    def _wake(self):
        waiting, self._waiting = self._waiting, None
        if waiting is not None:
            waiting.callback(None)

    def send(self, message):
        """Send a dict as JSON, or C{bytes}/C{str} exactly as given."""
        if isinstance(message, dict):
            message = json.dumps(message)
        if isinstance(message, str):
            message = message.encode()
        self._protocol.sendMessage(message)

    def send_binary(self, data):
        self._protocol.sendMessage(data, isBinary=True)

    async def next(self):
        """The next message received, in order."""
        while not self.inbox:
            if self._gone.called:
                raise ConnectionError(f"{self.user} closed: {self.close_code}")
            self._waiting = Deferred()
            await self._waiting.addTimeout(WAIT, reactor)
        return self.inbox.pop(0)

    async def expect(self, kind, skip=()):
        """
        The next message, which must be of type C{kind}, passing over types
        in C{skip} (presence between daemons arrives in no fixed order).
        """
        message = await self.next()
        while message["type"] in skip:
            message = await self.next()
        assert message["type"] == kind, message
        return message

    async def request(self, message, kind, skip=()):
        self.send(message)
        return await self.expect(kind, skip)

    async def quiet(self):
        """
        Assert nothing is waiting: a round trip proves every message sent to
        this client before it has arrived.
        """
        await self.request({"type": "get_rooms"}, "rooms_list")
        assert self.inbox == []

    async def closed(self):
        """Wait for the connection to close; the close code and reason."""
        return await self._gone.addTimeout(WAIT, reactor)

    async def close(self):
        if not self._gone.called and self._protocol is not None:
            self._protocol.sendClose(1000)
        await self.closed()


async def connect(port, user, room=None, origin="http://test.example", extra="",
                  headers=None, ca=None):
    """
    Open C{/ws} as C{user}; fire with the L{Client} once open. With C{ca}
    (a PEM file), over TLS to C{localhost}, verifying the certificate.
    """
    query = f"userId={user}" if user is not None else ""
    if room is not None:
        query += f"&room={room}"
    host = "localhost" if ca else "127.0.0.1"
    url = f"{'wss' if ca else 'ws'}://{host}:{port}/ws?{query}{extra}"
    client = Client(user)
    factory = WebSocketClientFactory(url, origin=origin, headers=headers)
    # Autobahn's client gives up a closing handshake after 1 s and aborts the
    # connection (RST), which discards a close frame the server has not read
    # yet: a test whose event loop (shared with the server) stalls that long
    # would see a 1006 it did not ask for. Wait as long as every other wait.
    factory.setProtocolOptions(closeHandshakeTimeout=WAIT)
    factory.protocol = _Protocol
    factory.client = client
    endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port)
    if ca:
        trust = Certificate.loadPEM(Path(ca).read_bytes())
        endpoint = wrapClientTLS(optionsForClientTLS("localhost", trustRoot=trust), endpoint)
    await endpoint.connect(factory)
    await client._open.addTimeout(WAIT, reactor)
    await client._take_ice_servers()
    return client

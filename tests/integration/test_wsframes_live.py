"""
The frame internals Aleatoria writes through, on a live connection of a daemon.
"""

import pytest_twisted
from autobahn.twisted.websocket import WebSocketServerProtocol

from aleatoria.edge import frames as wsframes
from aleatoria.edge.limits import Backlog


@pytest_twisted.ensureDeferred
async def test_the_server_side_attributes_exist_on_a_live_connection(server):
    """
    A connected server protocol has the attributes the direct write checks
    (with the values that allow it), and its transport's producer is ours.
    """
    alice = await server.connect("alice")
    protocol = server.hub.connections.get("alice")
    assert isinstance(protocol, WebSocketServerProtocol)
    assert protocol._perMessageCompress is None
    assert not protocol.send_queue and not protocol.logOctets
    assert isinstance(protocol.transport.producer, Backlog)
    await alice.quiet()


@pytest_twisted.ensureDeferred
async def test_what_the_transport_holds_is_measured(server):
    """
    wsframes.queued reads Twisted's write buffer: nothing held on an idle
    connection, and what was written while it cannot send.
    """
    alice = await server.connect("alice")
    transport = server.hub.connections.get("alice").transport
    assert wsframes.queued(transport) == 0
    transport.stopWriting()
    transport.write(b"\x89\x00" * 500)  # 500 empty pings, which the client answers
    assert wsframes.queued(transport) >= 1000
    transport.startWriting()
    await alice.quiet()

"""
What aleatoria/edge/frames.py takes from Autobahn's (and twisted.web's)
internals, pinned on a live connection: each test fails if the attribute
it relies on disappears or changes meaning.
"""

import pytest_twisted
from autobahn.twisted.websocket import WebSocketServerProtocol

from aleatoria.edge import frames as wsframes
from aleatoria.edge.limits import Backlog


def test_a_prepared_frame_is_a_text_frame():
    """A prepared frame is one unmasked, final text frame: opcode 1, the payload after it."""
    frame = wsframes.prepare(b"hello")
    assert frame.payloadHybi == b"\x81\x05hello"


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


def test_the_frame_meter_sits_on_autobahns_frame_hook():
    """
    The meter runs where Autobahn begins each frame, before Autobahn's own
    handling; the frame header it reads is Autobahn's current_frame
    (exercised live by tests/test_limits.py, test_frames_are_metered).
    """
    from autobahn.websocket.protocol import FrameHeader, WebSocketProtocol

    from aleatoria.edge.protocol import ClientProtocol

    assert ClientProtocol.onFrameBegin is wsframes.FrameMeter.onFrameBegin
    assert "onFrameBegin" in vars(WebSocketProtocol)
    assert FrameHeader(9, True, 0, 0, None).opcode == 9


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


def test_autobahn_formats_debug_lines_only_when_shown():
    """
    Autobahn's connection set-up pretty-prints its settings through the
    module's pformat; ours defers that to the rare log line that shows it.
    """
    import inspect

    from autobahn.twisted import websocket
    from autobahn.websocket import protocol

    assert "pformat(configAttrLog)" in inspect.getsource(protocol.WebSocketProtocol._connectionMade)
    received = inspect.getsource(websocket.WebSocketAdapterProtocol.dataReceived)
    assert "hltype(self.dataReceived)" in received and "hlval(len(data))" in received
    wsframes.lazy_debug_lines()
    settings, size = protocol.pformat([("a", 1)]), websocket.hlval(17)
    assert not isinstance(settings, str) and not isinstance(size, str)  # nothing built yet
    assert str(settings) == "[('a', 1)]" and "17" in str(size)

"""
What aleatoria/edge/frames.py takes from Autobahn's (and twisted.web's)
internals, pinned: each test fails if the attribute it relies on
disappears or changes meaning (on a live connection:
tests/integration/test_wsframes_live.py).
"""


from aleatoria.edge import frames as wsframes


def test_a_prepared_frame_is_a_text_frame():
    """A prepared frame is one unmasked, final text frame: opcode 1, the payload after it."""
    frame = wsframes.prepare(b"hello")
    assert frame.payloadHybi == b"\x81\x05hello"


def test_the_frame_meter_sits_on_autobahns_frame_hook():
    """
    The meter runs where Autobahn begins each frame, before Autobahn's own
    handling; the frame header it reads is Autobahn's current_frame
    (exercised live by tests/integration/test_limits.py, test_frames_are_metered).
    """
    from autobahn.websocket.protocol import FrameHeader, WebSocketProtocol

    from aleatoria.edge.protocol import ClientProtocol

    assert ClientProtocol.onFrameBegin is wsframes.FrameMeter.onFrameBegin
    assert "onFrameBegin" in vars(WebSocketProtocol)
    assert FrameHeader(9, True, 0, 0, None).opcode == 9


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

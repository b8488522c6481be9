"""
An echo server on the daemon's own frame path, for the Autobahn test
suite (tests/system/test_autobahn_suite.py): Autobahn's WebSocketServerProtocol
with the mixins L{aleatoria.edge.protocol.ClientProtocol} reads and writes
frames with -- the lean path, the frame meter (which refuses nothing
here), direct writes -- or, with C{--plain}, Autobahn alone, to score
against.

usage: python -m tests.support.echo_server PORT [--plain]
"""

import sys

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from twisted.internet import reactor

from aleatoria.edge import frames


class PlainEcho(WebSocketServerProtocol):
    def onMessage(self, payload, isBinary):
        self.sendMessage(payload, isBinary)


class LeanEcho(frames.DirectWrites, frames.LeanFrames, frames.FrameMeter, PlainEcho):
    def frame_refused(self, opcode):
        return None

    def onMessage(self, payload, isBinary):
        if isBinary:
            super().onMessage(payload, isBinary)
        else:
            self.write_prepared(frames.prepare(payload))


def main(port, plain=False):
    frames.lazy_debug_lines()
    factory = WebSocketServerFactory(f"ws://127.0.0.1:{port}")
    factory.protocol = PlainEcho if plain else LeanEcho
    factory.setProtocolOptions(maxFramePayloadSize=16 * 2**20, maxMessagePayloadSize=16 * 2**20)
    reactor.listenTCP(port, factory, interface="127.0.0.1")
    print("listening", flush=True)
    reactor.run()


if __name__ == "__main__":
    main(int(sys.argv[1]), "--plain" in sys.argv[2:])

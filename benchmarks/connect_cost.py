"""
What one WebSocket connect costs the server, layer by layer, in one
process with no socket: CPU microseconds per connect (handshake request
in, 101 out, the connection open) and per disconnect, for

- C{floor}: a hand-written upgrade on a bare Twisted protocol
  (benchmarks/peers/twisted_floor.py): what Twisted itself costs;
- C{autobahn}: Autobahn's WebSocketServerProtocol on its own, a protocol
  that accepts everyone;
- C{autobahn+web}: the same behind twisted.web (a Site, WebSocketResource),
  as the daemon serves /ws;
- C{aleatoria}: the daemon's own site, memory store (make_service on a fake
  reactor, as tests/support/memory.py), limits lifted as C{make bench} does.

and the Python memory each open connection holds (tracemalloc, a second
run). The kernel's part (accept, read, write, socket buffers) is the same
for every row and is not counted.
usage: python benchmarks/connect_cost.py [--count N] [--json]
"""

import argparse
import base64
import gc
import json
import os
import sys
import time
import tracemalloc
from pathlib import Path

import txaio
from autobahn.twisted.resource import WebSocketResource
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from twisted.internet.address import IPv4Address
from twisted.internet.protocol import Factory
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import Site

from aleatoria.daemon import config
from aleatoria.daemon.service import make_service
from aleatoria.edge.frames import lazy_debug_lines

sys.path.insert(0, str(Path(__file__).parent / "peers"))
import twisted_floor  # noqa: E402

ORIGIN = "https://bench.example"
LIFTED = {
    "port": "tcp:0:interface=127.0.0.1", "allowed-origin": ORIGIN,
    "rate-limit": "1000000", "rate-burst": "1000000", "connect-rate": "1000000",
    "connect-burst": "1000000", "address-rate": "100000000", "address-burst": "100000000",
    "max-connections-per-ip": "1000000", "max-rooms-per-address": "1000000",
}


def request(user, room):
    key = base64.b64encode(os.urandom(16)).decode()
    return (f"GET /ws?userId={user}&room={room} HTTP/1.1\r\nHost: 127.0.0.1:8085\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nOrigin: {ORIGIN}\r\n"
            f"User-Agent: connect_cost\r\n\r\n").encode()


class _Accepting(WebSocketServerProtocol):
    pass


def autobahn_factory(reactor):
    factory = WebSocketServerFactory("ws://127.0.0.1:8085/ws", reactor=reactor)
    factory.protocol = _Accepting
    return factory


def behind_web(reactor):
    root = Resource()
    root.putChild(b"ws", WebSocketResource(autobahn_factory(reactor)))
    return Site(root, reactor=reactor)


def floor(reactor):
    return Factory.forProtocol(twisted_floor.Floor)


def aleatoria(reactor):
    service = make_service(config.resolve(dict(LIFTED), {}), reactor)
    service.startService()
    return service.getServiceNamed("listener").factory


PEER, HOST = IPv4Address("TCP", "10.0.0.1", 40000), IPv4Address("TCP", "127.0.0.1", 8085)


def started(make):
    """A fake reactor, also txaio's loop, and the factory C{make} builds on it."""
    clock = MemoryReactorClock()
    txaio.config.loop = clock
    return clock, make(clock)


def open_connection(factory, data):
    """A connection of C{factory} that has read C{data} (an upgrade): its transport."""
    transport = StringTransport(hostAddress=HOST, peerAddress=PEER)
    transport.protocol = factory.buildProtocol(PEER)  # the upgrade may put another in its place
    transport.protocol.makeConnection(transport)
    transport.protocol.dataReceived(data)
    return transport


def measure(make, count):
    """CPU microseconds per connect and per disconnect of C{count} clients held open together."""
    _, factory = started(make)
    requests = [request(f"u{i}", f"r{i}") for i in range(count)]
    gc.collect()
    begun = time.process_time()
    transports = [open_connection(factory, data) for data in requests]
    connected = time.process_time()
    for transport in transports:
        assert transport.value().startswith(b"HTTP/1.1 101"), transport.value()[:200]
    closing = time.process_time()
    for transport in transports:
        transport.protocol.connectionLost(_LOST)
    done = time.process_time()
    return {"connect_us": round((connected - begun) / count * 1e6, 1),
            "disconnect_us": round((done - closing) / count * 1e6, 1)}


def held(make, count):
    """Bytes of Python memory each of C{count} open connections holds."""
    _, factory = started(make)
    requests = [request(f"u{i}", f"r{i}") for i in range(count)]
    transports = []
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for data in requests:
        transport = open_connection(factory, data)
        transport.clear()  # what was written has left, as the kernel would take it
        transports.append(transport)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return round((after - before) / count)


class _Lost(Exception):
    pass


_LOST = Failure(_Lost("connection lost"))


def main(argv):
    lazy_debug_lines()  # as the daemon runs Autobahn, for every row
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rows = {}
    for name, make in (("floor", floor), ("autobahn", autobahn_factory),
                       ("autobahn+web", behind_web), ("aleatoria", aleatoria)):
        rows[name] = measure(make, args.count)
        rows[name]["held_bytes"] = held(make, args.count)
        if not args.json:
            print(f"{name:14} {rows[name]['connect_us']:8.1f} us/connect "
                  f"{rows[name]['disconnect_us']:8.1f} us/disconnect "
                  f"{rows[name]['held_bytes']:8d} B held/connection")
    if args.json:
        print(json.dumps(rows))


if __name__ == "__main__":
    main(sys.argv[1:])

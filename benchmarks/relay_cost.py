"""
What one relayed signaling message costs the server, in one process with
no socket: CPU microseconds from a client's masked C{webrtc_candidate}
frame in to the frame written to its addressee, for

- C{floor}: benchmarks/peers/twisted_floor.py, which decodes, routes by
  C{toUser} and writes, nothing else;
- C{strangers}: the daemon (memory store, limits lifted), between two
  users in no call -- the store is asked whether either blocks the other;
- C{partners}: the same between two users the server paired, who skip
  that question.

The kernel's part (read, write) is the same for every row and is not
counted. usage: python benchmarks/relay_cost.py [--count N] [--json]
"""

import argparse
import gc
import json
import os
import struct
import sys
import time

from connect_cost import aleatoria, floor, open_connection, request, started

from aleatoria.edge.frames import lazy_debug_lines

CANDIDATE = {"candidate": "candidate:1 1 udp 2122260223 192.0.2.1 54400 typ host",
             "sdpMid": "0", "sdpMLineIndex": 0}


def masked(message):
    """C{message} as a client sends it: one masked text frame."""
    body = json.dumps(message).encode()
    mask = os.urandom(4)
    head = bytes((0x81,))
    if len(body) < 126:
        head += bytes((0x80 | len(body),))
    else:
        head += bytes((0x80 | 126,)) + struct.pack("!H", len(body))
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(body))


def connect(factory, user):
    """A client of C{user}, its upgrade answered; its transport (what it was sent)."""
    transport = open_connection(factory, request(user, f"room-{user}"))
    assert transport.value().startswith(b"HTTP/1.1 101"), transport.value()[:200]
    transport.clear()
    return transport


def measure(make, count, paired=False):
    clock, factory = started(make)
    alice, bob = connect(factory, "alice"), connect(factory, "bob")
    if paired:
        bob.protocol.dataReceived(masked({"type": "user_available_webrtc"}))
        alice.protocol.dataReceived(masked({"type": "request_random_peer"}))
        clock.advance(0)
        assert b"assign_role" in bob.value(), bob.value()
        alice.clear()
        bob.clear()
    frames = [masked({"type": "webrtc_candidate", "toUser": "bob", "payload": CANDIDATE})
              for _ in range(1000)]
    gc.collect()
    begun = time.process_time()
    for i in range(count):
        alice.protocol.dataReceived(frames[i % 1000])
        if i % 1000 == 999:
            bob.clear()
    spent = time.process_time() - begun
    clock.advance(0)
    assert b"webrtc_candidate" in bob.value() or count % 1000 == 0
    assert b"error" not in alice.value(), alice.value()[:300]
    return round(spent / count * 1e6, 1)


def main(argv):
    lazy_debug_lines()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=50000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rows = {"floor": measure(floor, args.count),
            "strangers": measure(aleatoria, args.count),
            "partners": measure(aleatoria, args.count, paired=True)}
    if args.json:
        print(json.dumps(rows))
    else:
        for name, us in rows.items():
            print(f"{name:10} {us:6.1f} us/relay")


if __name__ == "__main__":
    main(sys.argv[1:])

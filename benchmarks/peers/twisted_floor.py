"""
The floor: the least a Twisted server on CPython must do to serve the
benchmarks' scenarios -- accept, answer the upgrade, read masked text
frames, decode the JSON, route it (a room's members, or one user), encode
the envelope once and write it -- and nothing else: no limits, no
validation of note, no history, no metrics, no logs. What the daemon
spends above this is its own; what this spends is Twisted's and CPython's.

usage: python twisted_floor.py PORT
"""

import base64
import hashlib
import json
import sys
import time
from urllib.parse import parse_qs, urlsplit

from twisted.internet import reactor
from twisted.internet.protocol import Factory, Protocol

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
users, rooms = {}, {}


def frame(body):
    n = len(body)
    if n < 126:
        return bytes((0x81, n)) + body
    if n < 65536:
        return bytes((0x81, 126)) + n.to_bytes(2, "big") + body
    return bytes((0x81, 127)) + n.to_bytes(8, "big") + body


def unmask(mask, data):
    n = len(data)
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


class Floor(Protocol):
    user = None

    def connectionMade(self):
        self.buffer = b""

    def dataReceived(self, data):
        self.buffer += data
        if self.user is None:
            head, sep, rest = self.buffer.partition(b"\r\n\r\n")
            if not sep:
                return
            self.buffer = rest
            self.handshake(head)
        self.frames()

    def handshake(self, head):
        lines = head.decode("iso-8859-1").split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines[1:])
        headers = {k.lower(): v for k, v in headers.items()}
        query = parse_qs(urlsplit(lines[0].split(" ")[1]).query)
        self.user = query["userId"][0]
        room = query.get("room", ["Lobby"])[0]
        accept = base64.b64encode(hashlib.sha1(
            headers["sec-websocket-key"].encode() + GUID).digest())
        self.transport.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                             b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept
                             + b"\r\n\r\n")
        users[self.user] = self
        self.room = room
        rooms.setdefault(room, set()).add(self)

    def frames(self):
        buffer = self.buffer
        while len(buffer) >= 6:
            n = buffer[1] & 0x7F
            start = 2
            if n == 126:
                n, start = int.from_bytes(buffer[2:4], "big"), 4
            elif n == 127:
                n, start = int.from_bytes(buffer[2:10], "big"), 10
            end = start + 4 + n
            if len(buffer) < end:
                break
            opcode = buffer[0] & 0x0F
            body = unmask(buffer[start:start + 4], buffer[start + 4:end])
            buffer = buffer[end:]
            if opcode == 1:
                self.message(json.loads(body))
            elif opcode == 8:
                self.transport.loseConnection()
        self.buffer = buffer

    def message(self, m):
        m["fromUser"] = self.user
        m["createTime"] = time.strftime("%Y-%m-%dT%H:%M:%SZ")
        out = frame(json.dumps(m).encode())
        if m.get("toUser"):
            peer = users.get(m["toUser"])
            if peer is not None:
                peer.transport.write(out)
        elif m.get("room"):
            for member in rooms.get(m["room"], ()):
                member.transport.write(out)

    def connectionLost(self, reason):
        if self.user is not None:
            if users.get(self.user) is self:
                del users[self.user]
            rooms.get(self.room, set()).discard(self)


if __name__ == "__main__":
    factory = Factory.forProtocol(Floor)
    reactor.listenTCP(int(sys.argv[1]), factory, backlog=1024, interface="127.0.0.1")
    reactor.run()

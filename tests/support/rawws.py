"""
A WebSocket client that writes frames by hand, for what no client library
sends: floods of empty continuations, pings, thousands of fragments. Run
it in a thread (deferToThread): it blocks.
"""

import os
import socket
import struct

from .rawhttp import upgrade_request


def opened(port, user, origin):
    """A socket past the upgrade of C{/ws} as C{user}."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=30)
    raw.sendall(upgrade_request(f"userId={user}", origin))
    head = b""
    while b"\r\n\r\n" not in head:
        head += raw.recv(1)
    assert b" 101 " in head.split(b"\r\n", 1)[0], head
    opcode, payload = _one_frame(raw)
    assert opcode == 1 and b'"ice_servers"' in payload, payload
    return raw


def _exactly(raw, size):
    data = b""
    while len(data) < size:
        chunk = raw.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def _one_frame(raw):
    """The next server frame, read to its last byte and no further (the first: ice_servers)."""
    first, size = _exactly(raw, 2)
    size &= 0x7F
    if size == 126:
        size = struct.unpack("!H", _exactly(raw, 2))[0]
    elif size == 127:
        size = struct.unpack("!Q", _exactly(raw, 8))[0]
    return first & 0x0F, _exactly(raw, size)


def frame(opcode, payload=b"", fin=True, rsv=0):
    """One masked client frame."""
    mask = os.urandom(4)
    size = len(payload)
    first = (0x80 if fin else 0) | rsv << 4 | opcode
    if size < 126:
        head = struct.pack("!BB", first, 0x80 | size)
    else:
        head = struct.pack("!BBH", first, 0x80 | 126, size)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def send_until_closed(raw, frames):
    """Send C{frames}; stop early if the daemon hangs up."""
    try:
        raw.sendall(b"".join(frames))
    except OSError:
        pass


def received(raw):
    """The daemon's frames as they come: (opcode, payload), until it hangs up."""
    buffer = b""
    try:
        while True:
            while len(buffer) >= 2:
                size, start = buffer[1] & 0x7F, 2
                if size == 126:
                    if len(buffer) < 4:
                        break
                    size, start = struct.unpack("!H", buffer[2:4])[0], 4
                if len(buffer) < start + size:
                    break
                yield buffer[0] & 0x0F, buffer[start:start + size]
                buffer = buffer[start + size:]
            chunk = raw.recv(65536)
            if not chunk:
                return
            buffer += chunk
    except OSError:
        return


def close_code(raw):
    """Read the daemon's frames until its close frame: its code and reason (C{None} if none)."""
    for opcode, payload in received(raw):
        if opcode == 8:
            return struct.unpack("!H", payload[:2])[0], payload[2:].decode()
    return None


def answer(raw, message):
    """Send C{message} (JSON text) and the payload of the next text frame back."""
    raw.sendall(frame(1, message))
    for opcode, payload in received(raw):
        if opcode == 1:
            return payload
    raise ConnectionError("no answer")

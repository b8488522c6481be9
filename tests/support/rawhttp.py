"""
One HTTP exchange over a plain socket, for what an HTTP client library
hides: the status line as sent, connection headers (Upgrade), and the
headers of a 101. Run it in a thread (deferToThread): it blocks.
"""

import socket


def exchange(port, request):
    """
    Send C{request} (bytes) to the daemon on C{port}; the status line, the
    header lines lowercased, and the body (empty for a 101, whose
    connection stays open; else all that comes until the daemon closes).
    """
    with socket.create_connection(("127.0.0.1", port)) as raw:
        raw.sendall(request)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = raw.recv(4096)
            if not chunk:
                break
            answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        status, *headers = head.decode().split("\r\n")
        if " 101 " not in status:
            body += b"".join(iter(lambda: raw.recv(4096), b""))
    return status, [h.lower() for h in headers], body


def upgrade_request(query, origin, host="127.0.0.1", extra=""):
    """The bytes of a WebSocket upgrade of C{/ws?query}."""
    return (f"GET /ws?{query} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\n"
            "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            f"Origin: {origin}\r\n{extra}\r\n").encode()


def upload(port, head, pieces, limit=60.0, source="127.0.0.1"):
    """
    Send C{head} and then the body C{pieces} (an iterable of bytes) while
    reading what the daemon answers, as an impatient client does: sending
    stops when the daemon stops taking bytes (it closed or reset the
    connection). The status line, the header lines lowercased, the body
    (all that came until the daemon closed), and how many body bytes the
    connection took -- what the daemon read, and no more than its kernel
    buffers beside.
    """
    import select
    import time

    raw = socket.create_connection(("127.0.0.1", port), source_address=(source, 0))
    raw.sendall(head)
    raw.setblocking(False)
    pieces = iter(pieces)
    pending, accepted, answer, sending = b"", 0, b"", True
    deadline = time.monotonic() + limit
    try:
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no whole answer in {limit} s: {answer[:200]!r}")
            if sending and not pending:
                pending = next(pieces, b"")
                sending = bool(pending)
            readable, writable, _ = select.select([raw], [raw] if sending else [], [], 0.5)
            if readable:
                try:
                    chunk = raw.recv(65536)
                except ConnectionResetError:
                    chunk = b""
                if not chunk:
                    break
                answer += chunk
            if writable:
                try:
                    sent = raw.send(pending)
                except (BrokenPipeError, ConnectionResetError):
                    sending, pending = False, b""
                else:
                    accepted += sent
                    pending = pending[sent:]
    finally:
        raw.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *headers = head.decode().split("\r\n")
    return status, [h.lower() for h in headers], body, accepted


class Persistent:
    """
    One kept-alive connection to C{port}, asked one request at a time (in a
    thread: it blocks); C{source} the client address to connect from (any
    of 127.0.0.0/8).
    """

    def __init__(self, port, source="127.0.0.1"):
        self._raw = socket.create_connection(("127.0.0.1", port), source_address=(source, 0))
        self._raw.settimeout(30)
        self._buffer = b""

    def ask(self, request):
        """Send C{request}; the answer's status line, lowercased header lines and body."""
        self._raw.sendall(request)
        while b"\r\n\r\n" not in self._buffer:
            self._read()
        head, _, self._buffer = self._buffer.partition(b"\r\n\r\n")
        status, *headers = head.decode().split("\r\n")
        headers = [h.lower() for h in headers]
        if "transfer-encoding: chunked" not in headers:
            length = next(int(h.split(":", 1)[1]) for h in headers
                          if h.startswith("content-length:"))
            return status, headers, self._take(length)
        body = b""
        while True:
            while b"\r\n" not in self._buffer:
                self._read()
            size, _, self._buffer = self._buffer.partition(b"\r\n")
            piece = self._take(int(size, 16) + 2)[:-2]
            if not piece:
                return status, headers, body
            body += piece

    def _take(self, length):
        while len(self._buffer) < length:
            self._read()
        taken, self._buffer = self._buffer[:length], self._buffer[length:]
        return taken

    def send(self, data):
        self._raw.sendall(data)

    def closed(self):
        """Whether the daemon has closed (or reset) the connection: waits for it to."""
        try:
            return self._raw.recv(1) == b""
        except ConnectionResetError:
            return True

    def _read(self):
        chunk = self._raw.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed by the daemon after {self._buffer[:200]!r}")
        self._buffer += chunk

    def close(self):
        self._raw.close()

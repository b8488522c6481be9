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

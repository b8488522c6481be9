"""
Bodies a twistd daemon refuses are never read (issue #22, item 2): what the
process writes and the files it opens are read from /proc while a client
sends 10 MiB after a head it refuses.
"""

import itertools
import json
from pathlib import Path

import pytest

from ..support.api import TOKEN
from ..support.daemons import Spawned
from ..support.rawhttp import upload
from ..support.redis_server import free_port

BODY = 10 * 1024 * 1024
"""What a client tries to send after a head the daemon refuses: 10 MiB."""


def written(pid):
    """Bytes process C{pid} has written to files and pipes (its temporary files, its log)."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise AssertionError("no wchar in /proc/<pid>/io")


def body(framing, size=BODY, piece=64 * 1024):
    """C{size} bytes of body, as it would be framed (C{length} or C{chunked})."""
    data = b"x" * piece
    if framing == "length":
        return itertools.repeat(data, size // piece)
    return itertools.chain(itertools.repeat(b"%x\r\n%s\r\n" % (piece, data), size // piece),
                           [b"0\r\n\r\n"])


def framed(framing, size=BODY):
    return (b"Content-Length: %d" % size if framing == "length"
            else b"Transfer-Encoding: chunked")


def files_in(pid, folder):
    """The files process C{pid} has open in C{folder} (deleted or not)."""
    return [link for link in (Path(f"/proc/{pid}/fd").iterdir())
            if str(link.readlink()).startswith(str(folder))]


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_a_body_on_the_clients_port_is_refused_unread(tmp_path, framing):
    """
    Issue #22, item 2: a request that declares a body -- 10 MiB here, by
    length or chunked -- is answered 413 as soon as its head is in, and
    the connection closed: the daemon writes none of it anywhere (before
    the fix it wrote all 10 MiB to a temporary file), opens no file in its
    TMPDIR, and the client gets no more than kernel buffers into the
    connection.
    """
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    daemon = Spawned(None, tmp_path, env={"TMPDIR": str(temporary)})
    try:
        before = written(daemon.process.pid)
        status, headers, answer, accepted = upload(
            daemon.port, b"POST /health HTTP/1.1\r\nHost: x\r\n%s\r\n\r\n" % framed(framing),
            body(framing))
        after = written(daemon.process.pid)
        assert files_in(daemon.process.pid, temporary) == []
    finally:
        daemon.stop()
    assert status.startswith("HTTP/1.1 413 "), (status, answer)
    assert json.loads(answer)["code"] == "too_large"
    assert "connection: close" in headers and "x-content-type-options: nosniff" in headers
    assert after - before < 4096, after - before
    assert accepted < BODY // 2, accepted


def test_api_bodies_are_screened_before_they_are_read(tmp_path):
    """
    Issue #22, item 2, on the API port: a POST without the token that
    declares 10 GB is answered 401 at once, unread; with the token, a
    declared 10 MiB is 413 at once, and a chunked body is cut off with 413
    once past 64 KiB; a chunked body within it is served, from memory.
    Nothing of any of them is written anywhere.
    """
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    port = free_port()
    daemon = Spawned(None, tmp_path, "--api-port", f"tcp:{port}:interface=127.0.0.1",
                     env={"TMPDIR": str(temporary), "ALEATORIA_API_TOKEN": TOKEN})
    token = b"Authorization: Bearer %s\r\n" % TOKEN.encode()
    post = (b"POST /api/v1/publish HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Connection: close\r\n")
    try:
        before = written(daemon.process.pid)
        unauthorized = upload(port, post + b"Content-Length: %d\r\n\r\n" % 10**10,
                              body("length"))
        declared = upload(port, post + token + b"%s\r\n\r\n" % framed("length"), body("length"))
        chunked = upload(port, post + token + b"%s\r\n\r\n" % framed("chunked"), body("chunked"))
        after = written(daemon.process.pid)
        assert files_in(daemon.process.pid, temporary) == []
        small = upload(port, post + token + b"Transfer-Encoding: chunked\r\n\r\n",
                       [b"%x\r\n%s\r\n" % (len(piece), piece)
                        for piece in (b'{"room": "r', b'", "content": "hi"}')] + [b"0\r\n\r\n"])
    finally:
        daemon.stop()
    for (status, headers, answer, accepted), (code, kind) in zip(
            (unauthorized, declared, chunked),
            ((401, "unauthorized"), (413, "too_large"), (413, "too_large")), strict=True):
        assert status.startswith(f"HTTP/1.1 {code} "), (status, answer)
        assert "content-type: application/problem+json" in headers
        assert json.loads(answer)["code"] == kind
        assert accepted < BODY // 2, accepted
    assert 'www-authenticate: bearer realm="aleatoria"' in unauthorized[1]
    assert after - before < 4096, after - before
    assert small[0].startswith("HTTP/1.1 200 "), small

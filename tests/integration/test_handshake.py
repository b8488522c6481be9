"""
Opening /ws: who is admitted, who is refused with which HTTP status, and
replacement of an older connection of the same user (docs/protocol.rst, "Connecting").
"""

import json

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.web.client import Agent
from twisted.web.http_headers import Headers

from ..support.rawhttp import exchange, upgrade_request
from ..support.servers import ORIGIN, start_server, stop_server


async def handshake(server, query, origin=ORIGIN):
    """
    A raw upgrade request that must be refused; its HTTP status. (The body
    is left unread: Autobahn closes the connection after a refusal.)
    """
    headers = {
        b"Connection": [b"Upgrade"],
        b"Upgrade": [b"websocket"],
        b"Sec-WebSocket-Version": [b"13"],
        b"Sec-WebSocket-Key": [b"dGhlIHNhbXBsZSBub25jZQ=="],
    }
    if origin is not None:
        headers[b"Origin"] = [origin.encode()]
    response = await Agent(reactor).request(
        b"GET", server.url(f"/ws?{query}"), Headers(headers)
    )
    assert not response.headers.hasHeader(b"Sec-WebSocket-Accept")
    return response.code


@pytest.mark.parametrize("query", [
    pytest.param("", id="missing"),
    pytest.param("userId=", id="empty"),
    pytest.param("userId=" + "a" * 65, id="too-long"),
    pytest.param("userId=al%20ice", id="space"),
    pytest.param("userId=al%2Fice", id="slash"),
    pytest.param("userId=a&userId=b", id="twice"),
    pytest.param("userId=alice&room=" + "r" * 101, id="long-room"),
    pytest.param("userId=alice&room=a%00b", id="control-room"),
    pytest.param("userId=alice&room=a%E2%80%AEb", id="bidi-room"),
    pytest.param("userId=system", id="reserved-system"),
    pytest.param("userId=SYSTEM", id="reserved-system-upper"),
])
@pytest_twisted.ensureDeferred
async def test_bad_parameters_refused_with_400(server, query):
    """A missing or malformed userId or room is refused before any upgrade."""
    code = await handshake(server, query)
    assert code == 400
    assert server.hub.connection_count == 0


@pytest.mark.parametrize("origin", [
    pytest.param("http://evil.example", id="foreign"),
    pytest.param("https://test.example", id="other-scheme"),
    pytest.param("http://test.example:8080", id="other-port"),
    pytest.param("null", id="null"),
    pytest.param(None, id="absent"),
])
@pytest_twisted.ensureDeferred
async def test_origin_refused_with_403(server, origin):
    """Only the configured origins may connect; no Origin at all is refused."""
    code = await handshake(server, "userId=alice", origin=origin)
    assert code == 403
    assert server.hub.connection_count == 0


@pytest_twisted.ensureDeferred
async def test_malformed_origin_refused_with_400(server):
    """An Origin header that is no URL at all is a bad request."""
    code = await handshake(server, "userId=alice", origin="not a url")
    assert code == 400
    assert server.hub.connection_count == 0


@pytest_twisted.ensureDeferred
async def test_allowed_origin_with_default_port(server):
    """http://test.example:80 is the same origin as http://test.example."""
    client = await server.connect("alice", origin="http://test.example:80")
    assert "alice" in server.hub.connections
    await client.close()


@pytest_twisted.ensureDeferred
async def test_same_origin_by_default():
    """With no origins configured, a page of the daemon's own origin may connect, no other."""
    server = await start_server(**{"allowed-origin": None})
    try:
        own = f"http://127.0.0.1:{server.port}"
        await server.connect("alice", origin=own)
        code = await handshake(server, "userId=bob", origin="http://test.example")
        assert code == 403
    finally:
        await stop_server(server)


@pytest_twisted.ensureDeferred
async def test_any_origin_and_no_origin_when_configured():
    """'*' admits any origin; --allow-no-origin admits clients without one."""
    server = await start_server(**{"allowed-origin": "*", "allow-no-origin": True})
    try:
        await server.connect("alice", origin="https://anywhere.example")
        await server.connect("bob", origin=None)
        assert server.hub.connection_count == 2
    finally:
        await stop_server(server)


@pytest_twisted.ensureDeferred
async def test_second_connection_replaces_the_first(server):
    """
    A new connection of the same user closes the old one with 4001 'replaced';
    the new one works and the old one's rooms are left.
    """
    old = await server.connect("alice", room="before")
    watcher = await server.connect("bob", room="before")
    new = await server.connect("alice", room="after")
    code, reason = await old.closed()
    assert (code, reason) == (4001, "replaced")
    assert (await watcher.expect("user_left"))["payload"] == {"room": "before", "userId": "alice"}
    reply = await new.request({"type": "get_rooms"}, "rooms_list")
    assert reply["payload"] == {"rooms": ["after"]}
    assert server.hub.members("before") == ["bob"]


def _raw_upgrade(port, query, origin, host=None, headers=""):
    """
    A raw upgrade request; the status line, and the decoded JSON body of a
    refusal (C{None} when upgraded).
    """
    status, _, body = exchange(port, upgrade_request(
        query, origin, host or f"127.0.0.1:{port}", headers))
    return status, json.loads(body) if body and " 101 " not in status else None


@pytest.mark.parametrize("query, origin, status, code", [
    pytest.param("userId=bad%20id", ORIGIN, "400 Bad Request", "invalid_request", id="400"),
    pytest.param("userId=alice", "http://evil.example", "403 Forbidden", "forbidden", id="403"),
    pytest.param("userId=alice", "not a url", "400 Bad Request", "invalid_request",
                 id="malformed-origin"),
])
@pytest_twisted.ensureDeferred
async def test_refusals_have_a_json_body_and_a_plain_status_line(server, query, origin,
                                                                 status, code):
    """
    A refused handshake says why in a JSON body {"error", "code"} (wscat and
    browsers' devtools show it); the status line is the standard one and
    never carries the request's data.
    """
    from twisted.internet.threads import deferToThread

    line, body = await deferToThread(_raw_upgrade, server.port, query, origin)
    assert line == f"HTTP/1.1 {status}" and origin not in line
    assert body["code"] == code and body["error"]


@pytest.mark.parametrize("query, error", [
    pytest.param("room=r", "userId is required: 1-64 letters, digits or _ - . : @", id="none"),
    pytest.param("userId=bad%20user!", "userId must be one id of 1-64 letters, digits or "
                 "_ - . : @", id="malformed"),
    pytest.param("userId=a&userId=b", "userId must be one id of 1-64 letters, digits or "
                 "_ - . : @", id="twice"),
])
@pytest_twisted.ensureDeferred
async def test_a_refused_user_id_is_told_what_is_wrong_with_it(server, query, error):
    """A userId that is there but malformed is not told it is missing (a new user's report)."""
    from twisted.internet.threads import deferToThread

    _, body = await deferToThread(_raw_upgrade, server.port, query, ORIGIN)
    assert body["error"] == error


@pytest.mark.parametrize("given, host, origin, headers, upgraded", [
    pytest.param({}, "evil.example:{port}", "http://evil.example:{port}", "", False,
                 id="rebinding-refused"),
    pytest.param({}, "localhost:{port}", "http://localhost:{port}", "", True,
                 id="loopback-own-origin"),
    pytest.param({"public-host": "chat.example"}, "chat.example", "http://chat.example", "",
                 True, id="public-host"),
    pytest.param({"public-host": "chat.example", "trusted-proxy": "127.0.0.1"},
                 "chat.example", "https://chat.example", "X-Forwarded-Proto: https\r\n", True,
                 id="tls-at-the-proxy"),
    pytest.param({"public-host": "chat.example", "trusted-proxy": "127.0.0.1"},
                 "internal:8085", "https://chat.example",
                 "X-Forwarded-Proto: https\r\nX-Forwarded-Host: chat.example\r\n", True,
                 id="forwarded-host"),
    pytest.param({"public-host": "chat.example"}, "chat.example", "https://chat.example",
                 "X-Forwarded-Proto: https\r\n", False, id="untrusted-forwarding-ignored"),
])
@pytest_twisted.ensureDeferred
async def test_own_origin_rule(given, host, origin, headers, upgraded):
    """
    With no --allowed-origin, a page of the daemon's own origin may connect
    only if that origin's host is loopback or a --public-host (a page on
    evil.example resolving to us -- DNS rebinding -- may not); behind a
    trusted proxy, X-Forwarded-Proto and X-Forwarded-Host tell the origin.
    """
    from twisted.internet.threads import deferToThread

    server = await start_server(**{"allowed-origin": None, **given})
    try:
        port = server.port
        line, _ = await deferToThread(_raw_upgrade, port, "userId=alice",
                                      origin.format(port=port), host.format(port=port), headers)
        assert (" 101 " in line) == upgraded, line
    finally:
        await stop_server(server)

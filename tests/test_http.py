"""
The HTTP side of the port (docs/protocol.rst, "HTTP"), read with a real client.
"""

import json

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.threads import deferToThread
from twisted.web.client import Agent, readBody

from aleatoria.peers import LonePeers
from aleatoria.store.memory import MemoryStore
from aleatoria.web import Ready

from .conftest import ORIGIN, start_server, stop_server
from .rawhttp import exchange, upgrade_request


async def get(server, path):
    response = await Agent(reactor).request(b"GET", server.url(path))
    body = await readBody(response)
    return response, body


@pytest_twisted.ensureDeferred
async def test_health_is_exactly_ok(server):
    """/health answers 200 application/json with exactly {"status":"ok"} (compat)."""
    response, body = await get(server, "/health")
    assert response.code == 200
    assert response.headers.getRawHeaders(b"content-type") == [b"application/json"]
    assert body == b'{"status":"ok"}'


@pytest_twisted.ensureDeferred
async def test_ready_reports_store_and_connections(server):
    """/ready names the store and counts open connections."""
    await server.connect("alice")
    response, body = await get(server, "/ready")
    assert response.code == 200
    assert json.loads(body) == {
        "status": "ok", "store": "memory", "storeReachable": True, "connections": 1,
    }


class _UnreachableStore(MemoryStore):
    """Failure injection: a store whose ping fails."""

    def ping(self):
        from twisted.internet.defer import fail

        return fail(ConnectionRefusedError("store down"))


@pytest_twisted.ensureDeferred
async def test_ready_is_503_when_the_store_fails(server):
    """/ready answers 503 degraded while the store does not answer."""
    from twisted.web.resource import Resource
    from twisted.web.server import Site

    store = _UnreachableStore(reactor, 3600, 10)
    root = Resource()
    root.putChild(b"ready", Ready(server.hub, store, LonePeers(store), reactor))
    port = reactor.listenTCP(0, Site(root), interface="127.0.0.1")
    try:
        url = f"http://127.0.0.1:{port.getHost().port}/ready".encode()
        response = await Agent(reactor).request(b"GET", url)
        body = json.loads(await readBody(response))
    finally:
        await port.stopListening()
    assert response.code == 503
    assert body["status"] == "degraded" and body["storeReachable"] is False


@pytest_twisted.ensureDeferred
async def test_unknown_path_is_404(server):
    """Only /ws, /health and /ready exist."""
    response, _ = await get(server, "/nope")
    assert response.code == 404


@pytest_twisted.ensureDeferred
async def test_plain_get_on_ws_is_426(server):
    """
    A GET on /ws that is no WebSocket upgrade, of a client the upgrade would
    admit, gets a plain 426 saying so, not a page.
    """
    status, headers, body = await deferToThread(
        exchange, server.port, plain_get("userId=alice", ORIGIN))
    assert status.startswith("HTTP/1.1 426")
    assert "upgrade: websocket" in headers
    assert json.loads(body)["code"] == "upgrade_required"


@pytest_twisted.ensureDeferred
async def test_metrics_include_the_process_and_no_created_twins(server):
    """/metrics has the process's memory, CPU and file descriptors, and no _created series."""
    response = await Agent(reactor).request(b"GET", server.url("/metrics"))
    text = (await readBody(response)).decode()
    for name in ("process_resident_memory_bytes", "process_cpu_seconds_total",
                 "process_open_fds", "aleatoria_messages_received"):
        assert name in text, name
    assert "_created" not in text


@pytest_twisted.ensureDeferred
async def test_no_response_names_the_software(server):
    """
    Neither an HTTP answer nor the WebSocket upgrade sends a Server header:
    a version number helps only those looking for a known hole.
    """
    health = await deferToThread(
        exchange, server.port, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    upgrade = await deferToThread(
        exchange, server.port, upgrade_request("userId=alice", "http://test.example"))
    assert health[0].startswith("HTTP/1.1 200") and upgrade[0].startswith("HTTP/1.1 101")
    for _, headers, _ in (health, upgrade):
        assert not [h for h in headers if h.startswith("server:")], headers
    await server.connect("bob")  # the daemon goes on; alice's socket is closed


@pytest_twisted.ensureDeferred
async def test_metrics_on_a_port_of_their_own():
    """
    With --metrics-port, /metrics is served there and no longer on the
    clients' port (issue: security, item 14).
    """


    server = await start_server(**{"metrics-port": "tcp:0:interface=127.0.0.1"})
    try:
        response, _ = await get(server, "/metrics")
        assert response.code == 404
        port = server.service.getServiceNamed("metrics-listener").port.getHost().port
        response = await Agent(reactor).request(b"GET", f"http://127.0.0.1:{port}/metrics".encode())
        assert response.code == 200
        assert b"aleatoria_connections" in await readBody(response)
    finally:
        await stop_server(server)


@pytest_twisted.ensureDeferred
async def test_the_demo_app_is_served_only_with_demo():
    """
    With --demo, / is the demo app: its page, its script, the client and the
    style, each with its type, no caching surprises and a strict content
    policy; nothing else of the disk. Without it, / is 404.
    """
    server = await start_server(demo="true")
    try:
        response, body = await get(server, "/")
        assert response.code == 200 and b'<script type="module" src="app.js">' in body
        kinds = {"/index.html": b"text/html", "/app.js": b"text/javascript",
                 "/aleatoria.js": b"text/javascript", "/style.css": b"text/css"}
        for path, kind in kinds.items():
            response, body = await get(server, path)
            assert response.code == 200 and body, path
            assert response.headers.getRawHeaders(b"content-type")[0].startswith(kind), path
            policy = response.headers.getRawHeaders(b"content-security-policy")[0]
            assert policy.startswith(b"default-src 'self'")
            assert response.headers.getRawHeaders(b"x-content-type-options") == [b"nosniff"]
        for path in ("/app.js/x", "/demo", "/../setup.cfg", "/README.rst"):
            assert (await get(server, path))[0].code == 404, path
    finally:
        await stop_server(server)
    plain = await start_server()
    try:
        assert (await get(plain, "/"))[0].code == 404
        assert (await get(plain, "/app.js"))[0].code == 404
    finally:
        await stop_server(plain)


def plain_get(query, origin=None, host="127.0.0.1", extra=""):
    """The bytes of a plain GET of C{/ws?query}: no upgrade, as a fetch sends it."""
    lines = [f"GET /ws?{query} HTTP/1.1", f"Host: {host}", "Connection: close"]
    if origin is not None:
        lines.append(f"Origin: {origin}")
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode()


def _token(secret, **claims):
    import time

    import jwt

    return jwt.encode({"sub": "alice", "exp": int(time.time()) + 300, **claims}, secret)


_JWT = {"ALEATORIA_JWT_SECRET": "verdict-secret-" + "0123456789abcdef" * 4}


@pytest.mark.parametrize("env, given, query, origin", [
    pytest.param(None, {}, "userId=alice", ORIGIN, id="admitted"),
    pytest.param(None, {}, "userId=alice", "http://evil.example", id="origin"),
    pytest.param(None, {}, "userId=alice", None, id="no-origin"),
    pytest.param(None, {"allow-no-origin": "true"}, "userId=alice", None, id="no-origin-allowed"),
    pytest.param(None, {}, "room=Lobby", ORIGIN, id="no-user"),
    pytest.param(None, {}, "userId=system", ORIGIN, id="reserved-user"),
    pytest.param(None, {}, "userId=alice&room=" + "x" * 101, ORIGIN, id="bad-room"),
    pytest.param(_JWT, {}, "token=nope", ORIGIN, id="bad-token"),
    pytest.param(_JWT, {}, "token=" + _token(_JWT["ALEATORIA_JWT_SECRET"], exp=1), ORIGIN,
                 id="expired-token"),
    pytest.param(_JWT, {}, "room=Lobby&token=" + _token(_JWT["ALEATORIA_JWT_SECRET"],
                                                        rooms=["team-*"]),
                 ORIGIN, id="room-not-allowed"),
    pytest.param(None, {"anonymous": "true"}, "", ORIGIN, id="anonymous"),
    pytest.param(None, {"anonymous": "true"}, "userId=alice", ORIGIN, id="anonymous-user"),
    pytest.param(None, {"anonymous": "true"}, "reconnectToken=anon-1.forged", ORIGIN,
                 id="anonymous-forged-token"),
])
@pytest_twisted.ensureDeferred
async def test_a_plain_get_on_ws_tells_what_the_upgrade_gets(env, given, query, origin):
    """
    Browsers and Node's WebSocket cannot see why an upgrade was refused: a
    plain GET of /ws with the same query and headers answers the upgrade's
    refusal -- its status and JSON body -- or 426 when it would be admitted.
    """
    server = await start_server(env, **given)
    try:
        verdict = await deferToThread(exchange, server.port, plain_get(query, origin))
        upgrade = await deferToThread(exchange, server.port, upgrade_request(
            query, origin, extra="") if origin is not None else _upgrade_without_origin(query))
    finally:
        await stop_server(server)
    if " 101 " in upgrade[0]:
        assert verdict[0].startswith("HTTP/1.1 426"), verdict
        assert json.loads(verdict[2])["code"] == "upgrade_required"
    else:
        assert verdict[0] == upgrade[0]
        assert json.loads(verdict[2]) == json.loads(upgrade[2])


def _upgrade_without_origin(query):
    return upgrade_request(query, "x").replace(b"Origin: x\r\n", b"")


@pytest.mark.parametrize("given, origin, extra, status, readable", [
    pytest.param({}, ORIGIN, "", 426, True, id="allowed"),
    pytest.param({}, "http://evil.example", "", 403, False, id="refused"),
    pytest.param({"allowed-origin": None}, None, "Sec-Fetch-Site: same-origin\r\n", 426, False,
                 id="same-origin-page"),
    pytest.param({"allowed-origin": None}, None, "", 403, False, id="no-page"),
    pytest.param({"allowed-origin": None}, None, "Sec-Fetch-Site: cross-site\r\n", 403, False,
                 id="cross-site-without-origin"),
])
@pytest_twisted.ensureDeferred
async def test_an_allowed_page_may_read_the_verdict(given, origin, extra, status, readable):
    """
    The verdict carries CORS headers for a page of an allowed origin, so
    that a browser lets it read the answer; a fetch from a page of the
    daemon's own origin (which sends no Origin, but Sec-Fetch-Site:
    same-origin) is judged as its upgrade would be, with that origin.
    """
    server = await start_server(**given)
    try:
        line, headers, _ = await deferToThread(
            exchange, server.port,
            plain_get("userId=alice", origin, f"127.0.0.1:{server.port}", extra))
    finally:
        await stop_server(server)
    assert line.startswith(f"HTTP/1.1 {status}"), line
    assert (f"access-control-allow-origin: {origin}" in headers) == readable, headers
    if readable:
        assert "vary: origin" in headers


@pytest_twisted.ensureDeferred
async def test_the_verdict_makes_nothing_and_counts_as_an_attempt():
    """
    A verdict opens no connection and makes no identity: the hub counts
    none, and it keeps no slot of --max-connections-per-ip. Behind a trusted
    proxy it counts as a connection attempt of the forwarded client, as an
    upgrade does: past --connect-burst, both say 429.
    """
    server = await start_server(**{"anonymous": "true", "max-connections-per-ip": "2",
                                   "trusted-proxy": "127.0.0.0/8", "connect-rate": "0.01",
                                   "connect-burst": "4"})

    async def verdict(client):
        line, _, body = await deferToThread(exchange, server.port, plain_get(
            "", ORIGIN, extra=f"X-Forwarded-For: {client}\r\n"))
        return int(line.split()[1]), json.loads(body)

    try:
        answers = [await verdict("203.0.113.5") for _ in range(5)]
        upgrade = await deferToThread(exchange, server.port, upgrade_request(
            "", ORIGIN, extra="X-Forwarded-For: 203.0.113.5\r\n"))
        assert [status for status, _ in answers] == [426, 426, 426, 426, 429]
        assert "connection attempts" in answers[-1][1]["error"]
        assert " 429 " in upgrade[0]
        assert server.hub.connection_count == 0

        assert (await verdict("203.0.113.6"))[0] == 426
        for _ in range(2):
            await server.connect(None, "Lobby", headers={"X-Forwarded-For": "203.0.113.6"})
        assert server.hub.connection_count == 2
        status, body = await verdict("203.0.113.6")
        assert (status, body["code"]) == (429, "rate_limited")
        assert "too many connections" in body["error"]
    finally:
        await stop_server(server)


@pytest_twisted.ensureDeferred
async def test_the_verdict_ends_its_connection(server):
    """
    The daemon closes the connection of a verdict, asked for keep-alive or
    not, so that it holds none of the connections its address may have.
    """
    import socket

    def answered_and_closed(query, origin):
        request = plain_get(query, origin).replace(b"Connection: close\r\n", b"")
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
            raw.sendall(request)
            answer = b""
            while chunk := raw.recv(4096):
                answer += chunk
        return answer.split(b" ")[1]

    assert await deferToThread(answered_and_closed, "userId=alice", ORIGIN) == b"426"
    assert await deferToThread(answered_and_closed, "userId=alice", "http://evil.example") == b"403"

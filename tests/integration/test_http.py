"""
The HTTP side of the port (docs/protocol.rst, "HTTP"), read with a real
client. (What a twistd daemon does with a body it refuses:
tests/system/test_unread_bodies.py.)
"""

import json

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread
from twisted.web.client import Agent, readBody

from aleatoria.http.pages import Ready
from aleatoria.memory.backend import MemoryBackend

from ..support.api import TOKEN
from ..support.rawhttp import exchange, upgrade_request
from ..support.servers import ORIGIN, start_server, stop_server
from ..support.wsclient import WAIT


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


@pytest_twisted.ensureDeferred
async def test_ready_is_503_when_the_store_fails(server):
    """/ready answers 503 degraded while the store does not answer."""
    from twisted.internet.defer import fail
    from twisted.web.resource import Resource
    from twisted.web.server import Site

    backend = MemoryBackend(reactor, 3600, 10)
    backend.sessions.ping = lambda: fail(ConnectionRefusedError("store down"))  # injected
    root = Resource()
    root.putChild(b"ready", Ready(server.hub, backend, reactor))
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
    assert status == "HTTP/1.1 426 Upgrade Required"
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


async def backend_ports(**given):
    """A daemon with the server API and /metrics on ports of their own."""
    return await start_server({"ALEATORIA_API_TOKEN": TOKEN}, **{
        "api-port": "tcp:0:interface=127.0.0.1", "metrics-port": "tcp:0:interface=127.0.0.1",
        **given})


def port_of(server, listener):
    return server.service.getServiceNamed(listener).port.getHost().port


ASK = {"api-listener": b"GET /api/v1/stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                       b"Authorization: Bearer %s\r\n\r\n" % TOKEN.encode(),
       "metrics-listener": b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"}


@pytest.mark.parametrize("listener", ["api-listener", "metrics-listener"])
@pytest_twisted.ensureDeferred
async def test_backend_ports_hold_no_more_connections_per_address(listener):
    """
    Issue #22, item 2: the API and metrics ports have the clients' port's
    gate -- past --max-connections-per-ip idle connections from one
    address, the next is answered 429 at once (before the fix, 3 000 idle
    ones were held); once they go, it is served.
    """
    import socket

    server = await backend_ports(**{"max-connections-per-ip": "3", "handshake-timeout": "30"})
    port = port_of(server, listener)
    idle = []
    try:
        for _ in range(3):
            idle.append(await deferToThread(socket.create_connection, ("127.0.0.1", port)))
        status, headers, answer = await deferToThread(exchange, port, ASK[listener])
        assert status.startswith("HTTP/1.1 429 "), (status, answer)
        assert json.loads(answer)["code"] == "rate_limited"
        assert "x-content-type-options: nosniff" in headers
        for raw in idle:
            raw.close()
        for _ in range(100):  # until the daemon has seen them go
            status, _, _ = await deferToThread(exchange, port, ASK[listener])
            if " 200 " in status:
                break
            await deferLater(reactor, 0.05, lambda: None)
        assert " 200 " in status
    finally:
        for raw in idle:
            raw.close()
        await stop_server(server)


class _Trickle(Protocol):
    """Sends a request a byte every C{factory.every} seconds, for ever."""

    def connectionMade(self):
        from twisted.internet.task import LoopingCall

        self._bytes = iter(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X: y" * 10**6)
        self._loop = LoopingCall(lambda: self.transport.write(bytes([next(self._bytes)])))
        self._loop.start(self.factory.every)

    def connectionLost(self, reason):
        self._loop.stop()
        self.factory.lost.callback(None)


@pytest.mark.parametrize("listener", ["api-listener", "metrics-listener"])
@pytest_twisted.ensureDeferred
async def test_backend_ports_cut_off_a_trickled_request(listener):
    """
    Issue #22, item 2: a request trickled into the API or metrics port a
    byte at a time, each well within the idle timeout, is cut off once
    --handshake-timeout has passed since its first byte (before the fix it
    was still held after 75 s).
    """
    server = await backend_ports(**{"handshake-timeout": "1"})
    try:
        factory = Factory.forProtocol(_Trickle)
        factory.every, factory.lost = 0.2, Deferred()
        await TCP4ClientEndpoint(reactor, "127.0.0.1", port_of(server, listener)).connect(factory)
        began = reactor.seconds()
        await factory.lost.addTimeout(WAIT, reactor)
        # cut off by the daemon at its deadline (a second), not sooner, not at WAIT
        assert 0.9 <= reactor.seconds() - began < WAIT / 2
    finally:
        await stop_server(server)


@pytest_twisted.ensureDeferred
async def test_every_answer_says_nosniff_and_html_has_a_policy():
    """
    Issue #22, item 12: every answer of every site -- twisted.web's own
    404, 405 and 501 pages included, and the refusals sent before a
    request is read -- carries X-Content-Type-Options: nosniff, and every
    HTML answer a Content-Security-Policy.
    """
    server = await backend_ports(demo="true")
    api, metrics = port_of(server, "api-listener"), port_of(server, "metrics-listener")
    token = b"Authorization: Bearer %s\r\n" % TOKEN.encode()
    asked = [
        (server.port, b"GET /nope", b""), (server.port, b"DELETE /health", b""),
        (server.port, b"GET /health", b""), (server.port, b"GET /ready", b""),
        (server.port, b"GET /ws", b""), (server.port, b"GET /ws?userId=alice", b"Origin: http://test.example\r\n"),
        (server.port, b"GET /metrics", b""),
        (server.port, b"GET /", b""), (server.port, b"GET /app.js", b""),
        (server.port, b"GET /app.js/x", b""), (server.port, b"PUT /", b""),
        (server.port, b"POST /health", b"Content-Length: 5\r\n"),
        (api, b"GET /api/v1/stats", b""), (api, b"GET /api/v1/stats", token),
        (api, b"GET /api/v1/openapi.json", b""), (api, b"DELETE /api/v1/stats", token),
        (api, b"GET /api/v1/nowhere", token), (api, b"GET /elsewhere", b""),
        (api, b"POST /api/v1/publish", b"Content-Length: 5\r\n"),
        (metrics, b"GET /metrics", b""), (metrics, b"GET /nope", b""),
        (metrics, b"POST /metrics", b"Transfer-Encoding: chunked\r\n"),
    ]
    try:
        answers = [await deferToThread(exchange, port, b"%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                       b"Connection: close\r\n%s\r\n" % (line, extra))
                   for port, line, extra in asked]
        answers.append(await deferToThread(exchange, server.port, upgrade_request(
            "userId=alice", "http://elsewhere.example")))
    finally:
        await stop_server(server)
    statuses = set()
    for (status, headers, _), asking in zip(answers, [*asked, "refused upgrade"], strict=True):
        statuses.add(status.split()[1])
        assert "x-content-type-options: nosniff" in headers, (asking, status, headers)
        if any(h.startswith("content-type: text/html") for h in headers):
            assert any(h.startswith("content-security-policy: ") for h in headers), (
                asking, status, headers)
    assert statuses == {"200", "401", "403", "404", "405", "413", "426", "501"}, statuses


@pytest_twisted.ensureDeferred
async def test_the_demo_connects_only_to_its_own_origin():
    """
    Issue #22, item 12: the demo's policy lets its page open WebSockets to
    its own origin only ('self': no ws: or wss: to any host), and sets no
    base, posts forms nowhere else, and embeds no plugins.
    """
    server = await start_server(demo="true")
    try:
        response, _ = await get(server, "/")
    finally:
        await stop_server(server)
    (policy,) = response.headers.getRawHeaders(b"content-security-policy")
    directives = dict(d.strip().split(" ", 1) for d in policy.decode().split(";"))
    assert directives["connect-src"] == "'self'"
    assert (directives["base-uri"], directives["form-action"], directives["object-src"]) == (
        "'none'", "'self'", "'none'")
    assert directives["frame-ancestors"] == "'none'"

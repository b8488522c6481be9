"""
The HTTP side of the port (docs/protocol.rst, "HTTP"), read with a real client.
"""

import json

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.threads import deferToThread
from twisted.web.client import Agent, readBody

from aleatoria.peers import LonePeers
from aleatoria.store.memory import MemoryStore
from aleatoria.web import Ready

from .conftest import start_server, stop_server
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
    """A GET on /ws that is no WebSocket upgrade gets a plain 426 saying so, not a page."""
    status, headers, body = await deferToThread(
        exchange, server.port, b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
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

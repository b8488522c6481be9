"""
The server API (issue: nothing missed, item 4): every route with a good
token, a wrong one and none; what it does reaching users on every daemon;
bodies checked; its own rate limit. (The OpenAPI document held to a live
twistd daemon by schemathesis: tests/system/test_api_document.py.)
"""

import json

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import Clock
from twisted.internet.threads import deferToThread

from aleatoria.daemon import config
from aleatoria.domain.limits import KeyedBuckets
from aleatoria.edge.admission import Admission, Gate
from aleatoria.http.api import REFUSALS_WINDOW, ServerAPI
from aleatoria.http.site import api_site

from ..support.api import ENV, TOKEN, api_redis_daemon, api_server, call
from ..support.lifecycle_helpers import until
from ..support.rawhttp import Persistent, exchange
from ..support.servers import make_config, redis_daemon, start_server, stop_server

ROUTES = [
    ("POST", "/api/v1/publish", {"room": "r", "content": "hello"}),
    ("POST", "/api/v1/send", {"toUser": "bob", "content": "hello"}),
    ("POST", "/api/v1/disconnect", {"userId": "alice"}),
    ("GET", "/api/v1/rooms", None),
    ("GET", "/api/v1/rooms/r/members", None),
    ("GET", "/api/v1/users/alice", None),
    ("GET", "/api/v1/stats", None),
    ("GET", "/api/v1/reports", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
@pytest_twisted.ensureDeferred
async def test_every_route_needs_the_token(method, path, body):
    """A good token is served; a wrong one, or none, is 401 problem+json, and does nothing."""
    server = await api_server()
    try:
        alice = await server.connect("alice", room="r")
        for token in (None, "wrong", TOKEN[:-1], TOKEN + "x"):
            status, headers, problem = await call(server, method, path, body, token=token)
            assert status == 401, (token, problem)
            assert headers.getRawHeaders(b"content-type") == [b"application/problem+json"]
            assert headers.getRawHeaders(b"www-authenticate") == [b'Bearer realm="aleatoria"']
            assert (problem["status"], problem["code"]) == (401, "unauthorized")
        await alice.quiet()
        status, _, answer = await call(server, method, path, body)
        assert status == 200, answer
    finally:
        await stop_server(server)


@pytest_twisted.ensureDeferred
async def test_api_calls_reach_users_on_another_daemon(own_redis):
    """
    Through the API of one daemon: a system message reaches the room's
    members on both daemons and its history; a system DM reaches a user on
    the other daemon and is kept; a user there is disconnected with 4003
    and the reason; reads see every daemon.
    """
    one = await api_redis_daemon(own_redis.port)
    two = await redis_daemon(own_redis.port)
    try:
        alice = await one.connect("alice", room="r")
        bob = await two.connect("bob", room="r")
        await alice.expect("user_joined")
        await until(lambda: own_redis.raw("SCARD", "room:members:r") == "2")

        status, _, posted = await call(one, "POST", "/api/v1/publish",
                                       {"room": "r", "content": "maintenance at 5"})
        assert status == 200, posted
        for client in (alice, bob):
            message = await client.expect("chat_message", skip=("user_joined",))
            assert (message["fromUser"], message["toUser"], message["room"]) == (
                "system", client.user, "r")
            assert message["payload"] == {"content": "maintenance at 5"}
            assert message["incoming"] is True
            assert (message["messageId"], message["createTime"]) == (
                posted["messageId"], posted["createTime"])
        history = await bob.request({"type": "get_recent_messages", "room": "r"},
                                    "recent_messages")
        assert [(m["fromUser"], m["payload"]["content"])
                for m in history["payload"]["messages"]] == [("system", "maintenance at 5")]

        status, _, sent = await call(one, "POST", "/api/v1/send",
                                     {"toUser": "bob", "content": "your report was read"})
        assert (status, sent["online"]) == (200, True)
        dm = await bob.expect("chat_message")
        assert (dm["fromUser"], dm["toUser"], dm["incoming"]) == ("system", "bob", True)
        kept = await bob.request({"type": "get_direct_messages",
                                  "payload": {"withUser": "system"}}, "direct_messages")
        assert [m["payload"]["content"] for m in kept["payload"]["messages"]] == [
            "your report was read"]

        status, _, rooms = await call(one, "GET", "/api/v1/rooms")
        assert (status, rooms) == (200, {"rooms": [{"room": "r", "members": 2}], "count": 1})
        status, _, members = await call(one, "GET", "/api/v1/rooms/r/members")
        assert members == {"room": "r", "members": ["alice", "bob"], "count": 2}
        status, _, where = await call(one, "GET", "/api/v1/users/bob")
        assert where == {"userId": "bob", "online": True, "daemon": two.backend.node,
                         "rooms": ["r"], "inCall": False}
        await until(lambda: own_redis.raw("HGET", f"node:{two.backend.node}:stats",
                                          "connections") == "1")
        status, _, stats = await call(one, "GET", "/api/v1/stats")
        assert (stats["connections"], stats["poolSize"]) == (2, 0)
        assert sorted((d["node"], d["connections"]) for d in stats["daemons"]) == sorted(
            [(one.backend.node, 1), (two.backend.node, 1)])

        status, _, answer = await call(one, "POST", "/api/v1/disconnect",
                                       {"userId": "bob", "reason": "abuse reported"})
        assert (status, answer) == (200, {"userId": "bob", "disconnected": True})
        assert await bob.closed() == (4003, "abuse reported")
        await until(lambda: own_redis.raw("EXISTS", "presence:bob") == "0")
        status, _, where = await call(one, "GET", "/api/v1/users/bob")
        assert where == {"userId": "bob", "online": False, "daemon": None, "rooms": [],
                         "inCall": False}
        status, _, problem = await call(one, "POST", "/api/v1/disconnect", {"userId": "bob"})
        assert (status, problem["code"]) == (404, "user_offline")
    finally:
        await stop_server(one)
        await stop_server(two)


@pytest_twisted.ensureDeferred
async def test_a_system_dm_to_an_offline_user_waits_for_them():
    server = await api_server()
    try:
        status, _, sent = await call(server, "POST", "/api/v1/send",
                                     {"toUser": "carol", "content": "welcome"})
        assert (status, sent["online"]) == (200, False)
        carol = await server.connect("carol")
        kept = await carol.request({"type": "get_direct_messages",
                                    "payload": {"withUser": "system"}}, "direct_messages")
        (message,) = kept["payload"]["messages"]
        assert (message["fromUser"], message["incoming"], message["payload"]) == (
            "system", True, {"content": "welcome"})
    finally:
        await stop_server(server)


@pytest.mark.parametrize(("path", "body", "kind", "status", "code"), [
    ("/api/v1/publish", b"{not json", b"application/json", 400, "invalid_message"),
    ("/api/v1/publish", b'{"room": "r"}', b"application/json", 400, "invalid_message"),
    ("/api/v1/publish", b'{"room": "r", "content": "x", "extra": 1}', b"application/json",
     400, "invalid_message"),
    ("/api/v1/publish", b'{"room": 5, "content": "x"}', b"application/json", 400,
     "invalid_message"),
    ("/api/v1/publish", b'{"room": "", "content": "x"}', b"application/json", 400,
     "invalid_message"),
    ("/api/v1/publish", b'{"room": "r", "content": ""}', b"application/json", 400,
     "invalid_message"),
    ("/api/v1/publish", b'{"room": "r", "content": "x"}', b"text/plain", 415,
     "invalid_message"),
    ("/api/v1/publish", b'{"room": "r", "content": "' + b"x" * 70000 + b'"}',
     b"application/json", 413, "too_large"),
    ("/api/v1/publish", b'{"room": "r", "content": "' + b"x" * 5000 + b'"}',
     b"application/json", 400, "too_large"),
    ("/api/v1/send", b'{"toUser": "system", "content": "x"}', b"application/json", 400,
     "invalid_message"),
    ("/api/v1/disconnect", b'{"userId": "a", "reason": "' + b"x" * 124 + b'"}',
     b"application/json", 400, "too_large"),
    ("/api/v1/nowhere", b"{}", b"application/json", 404, "not_found"),
    ("/api/v1/stats", b"{}", b"application/json", 405, "method_not_allowed"),
])
@pytest_twisted.ensureDeferred
async def test_bad_requests_are_problems(path, body, kind, status, code):
    """A bad request is an RFC 9457 problem with a code, and changes nothing."""
    server = await api_server()
    try:
        alice = await server.connect("alice", room="r")
        got, headers, problem = await call(server, "POST", path, raw=body, kind=kind)
        assert (got, problem["status"], problem["code"]) == (status, status, code), problem
        assert headers.getRawHeaders(b"content-type") == [b"application/problem+json"]
        assert problem["type"] == "about:blank" and problem["detail"]
        await alice.quiet()
    finally:
        await stop_server(server)


@pytest_twisted.ensureDeferred
async def test_paging_rooms_and_members():
    server = await api_server()
    try:
        for user in ("u1", "u2", "u3"):
            client = await server.connect(user)
            await client.request({"type": "join_room", "room": "shared"}, "room_joined",
                                 skip=("user_joined",))
        _, _, first = await call(server, "GET", "/api/v1/rooms?limit=2")
        assert [r["room"] for r in first["rooms"]] == ["home-u1", "home-u2"]
        assert (first["count"], first["next"]) == (4, "home-u2")
        _, _, rest = await call(server, "GET", f"/api/v1/rooms?limit=2&after={first['next']}")
        assert rest["rooms"] == [{"room": "home-u3", "members": 1},
                                 {"room": "shared", "members": 3}]
        _, _, members = await call(server, "GET", "/api/v1/rooms/shared/members?limit=2")
        assert members == {"room": "shared", "members": ["u1", "u2"], "count": 3, "next": "u2"}
        status, _, problem = await call(server, "GET", "/api/v1/rooms?limit=0")
        assert (status, problem["code"]) == (400, "invalid_message")
    finally:
        await stop_server(server)


@pytest_twisted.ensureDeferred
async def test_the_api_has_its_own_rate_limit():
    """Past its burst an address is answered 429 with Retry-After; clients are unaffected."""
    server = await api_server(**{"api-rate": "0.5", "api-burst": "3"})
    try:
        statuses = [(await call(server, "GET", "/api/v1/stats"))[0] for _ in range(3)]
        status, headers, problem = await call(server, "GET", "/api/v1/stats")
        assert statuses == [200, 200, 200]
        assert (status, problem["code"]) == (429, "rate_limited")
        assert headers.getRawHeaders(b"retry-after") == [b"2"]
        alice = await server.connect("alice")
        await alice.quiet()
    finally:
        await stop_server(server)


@pytest_twisted.ensureDeferred
async def test_the_openapi_document_is_served_without_the_token():
    server = await api_server()
    try:
        status, headers, document = await call(server, "GET", "/api/v1/openapi.json",
                                               token=None)
        assert status == 200
        assert document["openapi"] == "3.1.0"
        assert set(document["paths"]) == {path.replace("/r/", "/{room}/").replace(
            "/alice", "/{userId}") for _, path, _ in ROUTES} | {
            "/api/v1/bans", "/api/v1/bans/{id}", "/api/v1/reports/{reportId}"}
    finally:
        await stop_server(server)


def test_the_api_is_off_without_its_port_and_refused_without_its_token():
    """
    A port without a token stops start-up; a token without a port is no
    API (daemons may share one environment file, and only some serve it).
    """
    with pytest.raises(config.ConfigError, match="needs ALEATORIA_API_TOKEN"):
        make_config(**{"api-port": "tcp:0"})
    assert make_config(ENV).api_port == ""


@pytest_twisted.ensureDeferred
async def test_a_failing_handler_is_a_500_problem_and_logged():
    """A bug behind a route is answered 500 problem+json, logged, and the API goes on."""
    from twisted.logger import globalLogPublisher

    events = []
    globalLogPublisher.addObserver(events.append)
    server = await api_server()
    try:
        async def broken():
            raise RuntimeError("a bug")

        server.hub.admin.stats = broken
        status, headers, problem = await call(server, "GET", "/api/v1/stats")
        assert (status, problem["code"]) == (500, "internal")
        assert headers.getRawHeaders(b"content-type") == [b"application/problem+json"]
        assert "a bug" not in problem["detail"]
        assert any(e.get("log_failure") and e["log_failure"].check(RuntimeError)
                   for e in events)
        status, _, rooms = await call(server, "GET", "/api/v1/rooms")
        assert status == 200
    finally:
        globalLogPublisher.removeObserver(events.append)
        await stop_server(server)


def stats(token):
    """A GET of /api/v1/stats with C{token}, on a kept-alive connection."""
    return (b"GET /api/v1/stats HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n"
            % token.encode())


def guess(token):
    """A POST with C{token}, screened before its body is read; its connection closes."""
    body = b'{"room": "r", "content": "hi"}'
    return (b"POST /api/v1/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
            b"Content-Type: application/json\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s"
            % (token.encode(), len(body), body))


async def ask(connection, request):
    status, headers, body = await deferToThread(connection.ask, request)
    return int(status.split()[1]), headers, json.loads(body)


@pytest_twisted.ensureDeferred
async def test_failed_authentications_have_a_budget_per_address():
    """
    Issue #22, item 5: an address may fail to authenticate
    --api-auth-failures times (10) -- with or without a body, the same
    budget; then it is answered 429 with Retry-After, and not even the
    right token is compared. Another address keeps its own budget.
    Before the fix, about 1 400 guesses a second were compared.
    """
    server = await api_server()
    port = server.service.getServiceNamed("api-listener").port.getHost().port
    guesser = await deferToThread(Persistent, port)
    neighbour = await deferToThread(Persistent, port, "127.0.0.2")
    try:
        guesses = 0
        while guesses < 100:
            if guesses % 2:
                line, _, answer = await deferToThread(exchange, port, guess(f"guess-{guesses}"))
                status = int(line.split()[1])
            else:
                status, _, answer = await ask(guesser, stats(f"guess-{guesses}"))
            if status != 401:
                break
            guesses += 1
        assert (guesses, status) == (10, 429), (guesses, status, answer)
        line, _, _ = await deferToThread(exchange, port, guess("one more"))
        assert line == "HTTP/1.1 429 Too Many Requests"
        status, headers, problem = await ask(guesser, stats(TOKEN))
        assert (status, problem["code"]) == (429, "rate_limited")
        (wait,) = [int(h.split(":")[1]) for h in headers if h.startswith("retry-after:")]
        assert 1 <= wait <= 6  # a failure comes back every 6 s
        assert (await ask(neighbour, stats(TOKEN)))[0] == 200
        assert (await ask(neighbour, stats("wrong")))[0] == 401
    finally:
        guesser.close()
        neighbour.close()
        await stop_server(server)


@pytest_twisted.ensureDeferred
async def test_refused_guesses_are_logged_once_and_summed_up():
    """
    Issue #22, item 5: 1 000 failed guesses from one address make two log
    lines -- the first refusal, then the rest summed up when the window
    (REFUSALS_WINDOW) ends -- not one each, and none before the fix. (A
    fake clock for the budget and the window; real sockets and requests.)
    """
    from twisted.logger import formatEvent, globalLogPublisher

    server = await start_server()
    clock = Clock()
    api = ServerAPI(server.hub.admin, TOKEN, KeyedBuckets(10**6, 10**6, clock.seconds),
                    KeyedBuckets(10 / 60, 10, clock.seconds), clock)
    gate = Gate(admission=Admission(10, KeyedBuckets(100, 100, clock.seconds)), deadline=30,
                clock=clock)
    port = reactor.listenTCP(0, api_site(api, reactor, gate, 30), interface="127.0.0.1")
    lines = []

    def heard(event):
        if "Server API" in (text := formatEvent(event)) and "127.0.0.5" in text:
            lines.append(text)

    globalLogPublisher.addObserver(heard)
    guesser = await deferToThread(Persistent, port.getHost().port, "127.0.0.5")
    try:
        statuses = [(await ask(guesser, stats(f"guess-{n}")))[0] for n in range(1000)]
        logged_at_once = list(lines)
        clock.advance(REFUSALS_WINDOW)
    finally:
        globalLogPublisher.removeObserver(heard)
        guesser.close()
        await port.stopListening()
        await stop_server(server)
    assert (statuses.count(401), statuses.count(429)) == (10, 990)
    assert logged_at_once == ["Server API: refused a request from 127.0.0.5: wrong token"]
    assert lines[1:] == ["Server API: refused 999 more requests from 127.0.0.5 in the last "
                         f"{REFUSALS_WINDOW} s: no or wrong token, or no failures left"]


@pytest_twisted.ensureDeferred
async def test_a_kept_alive_backend_is_cut_off_only_for_a_slow_request():
    """
    Issue #22, item 2: on the API port the gate's deadline runs for each
    request, from its first byte until it is in whole: a backend that
    keeps its connection and asks now and then, for longer in all than the
    deadline, is served; a request that takes longer than it to come in
    is cut off. (A fake clock for the deadline; real sockets.)
    """
    server = await start_server()
    clock = Clock()
    api = ServerAPI(server.hub.admin, TOKEN, KeyedBuckets(100, 100, clock.seconds),
                    KeyedBuckets(1, 10, clock.seconds), clock)
    gate = Gate(admission=Admission(10, KeyedBuckets(100, 100, clock.seconds)), deadline=1,
                clock=clock)
    port = reactor.listenTCP(0, api_site(api, reactor, gate, 30), interface="127.0.0.1")
    backend = await deferToThread(Persistent, port.getHost().port)
    try:
        for _ in range(3):
            assert (await ask(backend, stats(TOKEN)))[0] == 200
            assert not clock.getDelayedCalls()
            clock.advance(0.9)
        await deferToThread(backend.send, b"GET /api/v1/st")
        await until(clock.getDelayedCalls)
        clock.advance(0.9)
        assert clock.getDelayedCalls()
        clock.advance(0.1)
        assert await deferToThread(backend.closed)
    finally:
        backend.close()
        await port.stopListening()
        await stop_server(server)

"""
Bans (issue #24, section 3): the server API sets, lists and lifts them,
on the memory store and on Redis, where each is kept until it ends; a
ban closes what it bars on every daemon and refuses its handshakes.
"""

import json

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread
from twisted.web.client import Agent, readBody
from twisted.web.http_headers import Headers

from ..support.api import ENV, api_redis_daemon, api_server, call
from ..support.lifecycle_helpers import WAIT, until
from ..support.rawhttp import exchange, upgrade_request
from ..support.servers import ORIGIN, redis_daemon, stop_server


async def soon(check):
    """Wait until the coroutine function C{check} answers true, at most WAIT seconds."""
    for _ in range(int(WAIT / 0.05)):
        if await check():
            return
        await deferLater(reactor, 0.05, lambda: None)
    raise AssertionError("condition never held")


@pytest_twisted.async_yield_fixture(params=["memory", "redis"])
async def daemon(request):
    """A daemon with the server API, on each store in turn (Redis: a prefix of its own)."""
    if request.param == "memory":
        server = await api_server()
    else:
        redis = request.getfixturevalue("redis_server")
        server = await api_redis_daemon(
            redis.port, **{"redis-prefix": request.getfixturevalue("redis_prefix")})
        server.redis = redis
    yield server
    await stop_server(server)


@pytest_twisted.ensureDeferred
async def test_bans_are_set_listed_and_lifted(daemon):
    """
    POST answers 201 with the ban, its id and end; GET lists those in
    force, the newest first; DELETE lifts one (then it is gone: 404).
    """
    status, _, user_ban = await call(daemon, "POST", "/api/v1/bans",
                                     {"userId": "bob", "seconds": 600, "reason": "spam"})
    assert status == 201, user_ban
    assert (user_ban["userId"], user_ban["reason"]) == ("bob", "spam")
    assert "address" not in user_ban and user_ban["id"]
    assert user_ban["createdAt"] < user_ban["expiresAt"]
    status, _, range_ban = await call(daemon, "POST", "/api/v1/bans",
                                      {"address": "2001:db8::7/32", "seconds": 60})
    assert status == 201, range_ban
    assert (range_ban["address"], range_ban["reason"]) == ("2001:db8::/32", "")
    status, _, mapped = await call(daemon, "POST", "/api/v1/bans",
                                   {"address": "::ffff:203.0.113.9", "seconds": 60})
    assert (status, mapped["address"]) == (201, "203.0.113.9/32")

    status, _, listed = await call(daemon, "GET", "/api/v1/bans")
    assert (status, listed) == (200, {"bans": [mapped, range_ban, user_ban], "count": 3})
    if daemon.backend.kind == "redis":
        prefix = daemon.backend.keys.prefix
        ttl = int(daemon.redis.raw("PTTL", f"{prefix}ban:{user_ban['id']}"))
        assert 590_000 < ttl <= 600_000

    status, _, lifted = await call(daemon, "DELETE", f"/api/v1/bans/{user_ban['id']}")
    assert (status, lifted) == (200, user_ban)
    status, _, listed = await call(daemon, "GET", "/api/v1/bans")
    assert listed == {"bans": [mapped, range_ban], "count": 2}
    status, _, problem = await call(daemon, "DELETE", f"/api/v1/bans/{user_ban['id']}")
    assert (status, problem["code"]) == (404, "not_found")
    if daemon.backend.kind == "redis":
        assert daemon.redis.raw("EXISTS", f"{prefix}ban:{user_ban['id']}") == "0"


@pytest_twisted.ensureDeferred
async def test_a_ban_ends_by_itself(daemon):
    """A ban of one second is listed, then not; on Redis its keys are gone with it."""
    status, _, ban = await call(daemon, "POST", "/api/v1/bans",
                                {"userId": "bob", "seconds": 1})
    listed = (await call(daemon, "GET", "/api/v1/bans"))[2]
    assert listed["bans"] == [ban]

    async def over():
        return (await call(daemon, "GET", "/api/v1/bans"))[2]["count"] == 0

    await soon(over)
    if daemon.backend.kind == "redis":
        prefix = daemon.backend.keys.prefix
        await until(lambda: daemon.redis.raw(
            "EXISTS", f"{prefix}ban:{ban['id']}", f"{prefix}bans") == "0")
    status, _, problem = await call(daemon, "DELETE", f"/api/v1/bans/{ban['id']}")
    assert status == 404


@pytest.mark.parametrize("body", [
    pytest.param(b'{"userId": "bob"}', id="no-seconds"),
    pytest.param(b'{"userId": "bob", "seconds": 0}', id="zero-seconds"),
    pytest.param(b'{"userId": "bob", "seconds": 1.5}', id="fraction"),
    pytest.param(b'{"userId": "bob", "seconds": "60"}', id="text-seconds"),
    pytest.param(b'{"userId": "bob", "seconds": 999999999999}', id="ages"),
    pytest.param(b'{"seconds": 60}', id="no-target"),
    pytest.param(b'{"userId": "bob", "address": "203.0.113.1", "seconds": 60}', id="both"),
    pytest.param(b'{"userId": "b o b", "seconds": 60}', id="bad-user"),
    pytest.param(b'{"userId": "system", "seconds": 60}', id="system"),
    pytest.param(b'{"address": "203.0.113.300", "seconds": 60}', id="bad-address"),
    pytest.param(b'{"address": "203.0.113.0/33", "seconds": 60}', id="bad-prefix"),
    pytest.param(b'{"address": "example.com", "seconds": 60}', id="host-name"),
    pytest.param(b'{"userId": "bob", "seconds": 60, "reason": "' + b"x" * 501 + b'"}',
                 id="long-reason"),
    pytest.param(b'{"userId": "bob", "seconds": 60, "until": 5}', id="unknown-field"),
    pytest.param(b"[1, 2]", id="not-an-object"),
])
@pytest_twisted.ensureDeferred
async def test_bad_bans_are_refused(daemon, body):
    """A bad body is a 400 problem saying what is wrong, and bans nobody."""
    status, headers, problem = await call(daemon, "POST", "/api/v1/bans", raw=body)
    assert (status, problem["code"]) == (400, "invalid_message"), problem
    assert headers.getRawHeaders(b"content-type") == [b"application/problem+json"]
    assert problem["detail"]
    assert (await call(daemon, "GET", "/api/v1/bans"))[2] == {"bans": [], "count": 0}


@pytest.mark.parametrize(("method", "path", "body"), [
    ("POST", "/api/v1/bans", {"userId": "bob", "seconds": 60}),
    ("GET", "/api/v1/bans", None),
    ("DELETE", "/api/v1/bans/0123", None),
])
@pytest_twisted.ensureDeferred
async def test_the_ban_routes_need_the_token(method, path, body):
    server = await api_server()
    try:
        status, _, problem = await call(server, method, path, body, token="wrong")
        assert (status, problem["code"]) == (401, "unauthorized")
        assert (await call(server, "GET", "/api/v1/bans"))[2]["count"] == 0
    finally:
        await stop_server(server)


# Enforcement: open connections closed, handshakes refused, on every daemon


def refused(server, user, forwarded=None):
    """
    A raw upgrade of C{user} to C{server} (from C{forwarded}, through a
    trusted proxy, if given): the status line, its headers and JSON body.
    """
    extra = f"X-Forwarded-For: {forwarded}\r\n" if forwarded else ""
    status, headers, body = exchange(server.port, upgrade_request(
        f"userId={user}", ORIGIN, f"127.0.0.1:{server.port}", extra))
    return status, headers, json.loads(body) if body else None


async def assert_banned(server, user, at_most, forwarded=None):
    """C{user}'s handshake is refused 403 banned, with the seconds left (1 to C{at_most})."""
    status, headers, body = await deferToThread(refused, server, user, forwarded)
    assert status == "HTTP/1.1 403 Forbidden", (status, body)
    assert (body["code"], body["error"]) == ("banned", "banned")
    assert 1 <= body["retryAfter"] <= at_most
    assert f"retry-after: {body['retryAfter']}" in headers


async def admitted(server, user, forwarded=None):
    """Wait until no ban refuses C{user} on C{server}, then connect it."""
    await until(lambda: not server.hub.bans.holding(user, forwarded or "127.0.0.1"))
    headers = {"X-Forwarded-For": forwarded} if forwarded else None
    return await server.connect(user, headers=headers)


@pytest_twisted.ensureDeferred
async def test_a_user_ban_closes_it_on_the_other_daemon_and_keeps_it_out(own_redis):
    """
    Two daemons on one Redis: a ban of bob set through the first closes
    bob's connection on the second with 4003 banned; both refuse bob's
    handshakes (403 banned, the seconds left); carol is untouched; once
    the ban is lifted, bob comes back.
    """
    one = await api_redis_daemon(own_redis.port)
    two = await redis_daemon(own_redis.port)
    try:
        bob, carol = await two.connect_many("bob", "carol")
        status, _, ban = await call(one, "POST", "/api/v1/bans",
                                    {"userId": "bob", "seconds": 600, "reason": "spam"})
        assert status == 201
        assert await bob.closed() == (4003, "banned")
        for server in (one, two):
            await assert_banned(server, "bob", 600)
        await carol.quiet()

        status, _, _ = await call(one, "DELETE", f"/api/v1/bans/{ban['id']}")
        assert status == 200
        back = await admitted(two, "bob")
        await back.quiet()
    finally:
        await stop_server(one)
        await stop_server(two)


@pytest.mark.parametrize(("banned", "network", "spared", "seconds"), [
    pytest.param("203.0.113.7", "203.0.113.0/24", "203.0.114.7", 5, id="v4-ends"),
    pytest.param("2001:db8:1::7", "2001:db8::/32", "2001:db9::7", 600, id="v6-lifted"),
])
@pytest_twisted.ensureDeferred
async def test_a_range_ban_closes_its_addresses_on_the_other_daemon(own_redis, banned,
                                                                    network, spared,
                                                                    seconds):
    """
    Two daemons behind a trusted proxy on one Redis: a ban of a CIDR range
    closes the connections from inside it on the other daemon (4003
    banned), whatever their user, and refuses handshakes from it on both;
    a client outside the range is untouched; when the ban ends by itself
    (5 s), or is lifted, the range comes back.
    """
    proxy = {"trusted-proxy": "127.0.0.1"}
    one = await api_redis_daemon(own_redis.port, **proxy)
    two = await redis_daemon(own_redis.port, **proxy)
    try:
        inside = await two.connect("alice", headers={"X-Forwarded-For": banned})
        outside = await two.connect("carol", headers={"X-Forwarded-For": spared})
        status, _, ban = await call(one, "POST", "/api/v1/bans",
                                    {"address": network, "seconds": seconds})
        assert (status, ban["address"]) == (201, network)
        assert await inside.closed() == (4003, "banned")
        for server in (one, two):
            await assert_banned(server, "someone-else", seconds, forwarded=banned)
        await outside.quiet()
        if seconds > 5:
            await call(one, "DELETE", f"/api/v1/bans/{ban['id']}")

        back = await admitted(two, "alice", forwarded=banned)
        await back.quiet()
    finally:
        await stop_server(one)
        await stop_server(two)


@pytest_twisted.ensureDeferred
async def test_bans_on_the_memory_store():
    """
    On one daemon alone: a user ban and an address ban close what they bar
    and refuse it, a plain GET of /ws says so too (for clients that cannot
    see a refused upgrade); a lifted ban and an ended one (5 s) let it back.
    """
    server = await api_server()
    try:
        bob, carol = await server.connect_many("bob", "carol")
        status, _, ban = await call(server, "POST", "/api/v1/bans",
                                    {"userId": "bob", "seconds": 60})
        assert await bob.closed() == (4003, "banned")
        await assert_banned(server, "bob", 60)
        verdict = await Agent(reactor).request(b"GET", server.url("/ws?userId=bob"),
                                               Headers({b"origin": [ORIGIN.encode()]}))
        body = json.loads(await readBody(verdict))
        assert (verdict.code, body["code"]) == (403, "banned") and body["retryAfter"] >= 1
        await call(server, "DELETE", f"/api/v1/bans/{ban['id']}")
        bob = await admitted(server, "bob")

        await call(server, "POST", "/api/v1/bans", {"address": "127.0.0.0/8", "seconds": 5})
        assert await bob.closed() == (4003, "banned")
        assert await carol.closed() == (4003, "banned")
        await assert_banned(server, "dave", 5)
        dave = await admitted(server, "dave")
        await dave.quiet()
    finally:
        await stop_server(server)


@pytest_twisted.ensureDeferred
async def test_a_daemon_that_starts_later_knows_the_bans(own_redis):
    """A daemon started after a ban was set loads it from Redis, and enforces it."""
    one = await api_redis_daemon(own_redis.port)
    await call(one, "POST", "/api/v1/bans", {"userId": "bob", "seconds": 600})
    two = await redis_daemon(own_redis.port)
    try:
        await until(lambda: two.hub.bans.holding("bob", "127.0.0.1"))
        await assert_banned(two, "bob", 600)
    finally:
        await stop_server(one)
        await stop_server(two)


@pytest_twisted.ensureDeferred
async def test_a_disconnect_with_ban_seconds_is_not_undone_by_reconnecting(own_redis):
    """
    The disconnect route with banSeconds closes the user on the other
    daemon (4003 banned) and bans it for that long, the reason kept as
    the ban's: its reconnect is refused. A user offline is banned all the
    same (disconnected: false); a bad banSeconds bans nobody.
    """
    one = await api_redis_daemon(own_redis.port)
    two = await redis_daemon(own_redis.port)
    try:
        bob = await two.connect("bob")
        status, _, answer = await call(one, "POST", "/api/v1/disconnect",
                                       {"userId": "bob", "reason": "abuse", "banSeconds": 600})
        assert status == 200, answer
        assert (answer["userId"], answer["disconnected"]) == ("bob", True)
        assert (answer["ban"]["userId"], answer["ban"]["reason"]) == ("bob", "abuse")
        assert await bob.closed() == (4003, "banned")
        await assert_banned(two, "bob", 600)

        status, _, answer = await call(one, "POST", "/api/v1/disconnect",
                                       {"userId": "carol", "banSeconds": 60})
        assert (status, answer["disconnected"], answer["ban"]["userId"]) == (200, False, "carol")
        await assert_banned(one, "carol", 60)
        for bad in (0, -5, "60", 10**12):
            status, _, problem = await call(one, "POST", "/api/v1/disconnect",
                                            {"userId": "dave", "banSeconds": bad})
            assert (status, problem["code"]) == (400, "invalid_message")
        listed = (await call(one, "GET", "/api/v1/bans"))[2]
        assert [b["userId"] for b in listed["bans"]] == ["carol", "bob"]
    finally:
        await stop_server(one)
        await stop_server(two)


@pytest_twisted.ensureDeferred
async def test_bans_are_counted_logged_and_in_the_trail(receiver, reporting):  # noqa: F811
    """
    /metrics counts the bans set and lifted, the connections they closed,
    the handshakes they refused and those in force; each is a log line;
    the ban is a breadcrumb in the trail of what is reported next (here:
    the refused handshake).
    """
    from twisted.logger import formatEvent, globalLogPublisher

    lines = []

    def heard(event):
        lines.append(formatEvent(event))

    globalLogPublisher.addObserver(heard)
    server = await reporting(env=ENV, **{"api-port": "tcp:0:interface=127.0.0.1"})
    try:
        bob = await server.connect("bob")
        status, _, ban = await call(server, "POST", "/api/v1/bans",
                                    {"userId": "bob", "seconds": 60, "reason": "spam"})
        assert await bob.closed() == (4003, "banned")
        await call(server, "POST", "/api/v1/bans", {"address": "192.0.2.0/24", "seconds": 60})
        await assert_banned(server, "bob", 60)
        refused = await receiver.event(operation="websocket_upgrade")
        crumbs = [(c["category"], c["message"], c.get("data"))
                  for c in refused["breadcrumbs"]["values"] if c["category"] == "safety"]
        assert crumbs[-1] == ("safety", "Ban set", {
            "banId": crumbs[-1][2]["banId"], "address": "192.0.2.0/24", "seconds": 60})
        scraped = await scrape(server)
        assert scraped['aleatoria_bans_total{target="user"}'] == 1
        assert scraped['aleatoria_bans_total{target="address"}'] == 1
        assert scraped["aleatoria_ban_closes_total"] == 1
        assert scraped["aleatoria_handshakes_banned_total"] == 1
        assert scraped["aleatoria_bans_in_force"] == 2
        await call(server, "DELETE", f"/api/v1/bans/{ban['id']}")
        scraped = await scrape(server)
        assert (scraped["aleatoria_bans_lifted_total"], scraped["aleatoria_bans_in_force"]) == (
            1, 1)
    finally:
        globalLogPublisher.removeObserver(heard)
    assert f"Banned bob for 60 s (ban {ban['id']}), reason 'spam'" in lines
    assert f"bob from 127.0.0.1 closed by the ban {ban['id']}" in lines
    assert f"Lifted the ban {ban['id']} of bob" in lines
    assert "Refused handshake from 127.0.0.1 (userId 'bob', origin 'http://test.example'): " \
        "'banned'" in lines


async def scrape(server):
    """/metrics, as C{{sample: value}}."""
    response = await Agent(reactor).request(b"GET", server.url("/metrics"))
    text = (await readBody(response)).decode()
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines() if line and not line.startswith("#")}


@pytest_twisted.ensureDeferred
async def test_bans_hold_while_redis_is_down(own_redis):
    """
    Redis stops: the daemon goes on refusing what it knows to be banned
    (its own copy); setting, listing or lifting a ban is 503 unavailable
    until Redis is back.
    """
    server = await api_redis_daemon(own_redis.port, **{"redis-timeout": "0.5"})
    try:
        status, _, ban = await call(server, "POST", "/api/v1/bans",
                                    {"userId": "bob", "seconds": 600})
        own_redis.stop()
        await until(lambda: not server.backend.connected)
        await assert_banned(server, "bob", 600)
        for method, path, body in (("POST", "/api/v1/bans", {"userId": "eve", "seconds": 60}),
                                   ("GET", "/api/v1/bans", None),
                                   ("DELETE", f"/api/v1/bans/{ban['id']}", None)):
            status, _, problem = await call(server, method, path, body)
            assert (status, problem["code"]) == (503, "unavailable"), (method, problem)
    finally:
        await stop_server(server)


@pytest_twisted.ensureDeferred
async def test_bans_are_listed_in_pages(daemon):
    """GET pages the bans newest first with limit and after (the last id of a page)."""
    made = [(await call(daemon, "POST", "/api/v1/bans",
                        {"userId": f"user{n}", "seconds": 60}))[2] for n in range(3)]
    newest = sorted(made, key=lambda ban: ban["id"], reverse=True)  # ids order by creation
    status, _, first = await call(daemon, "GET", "/api/v1/bans?limit=2")
    assert (status, first["bans"], first["count"]) == (200, newest[:2], 3)
    assert first["next"] == newest[1]["id"]
    _, _, rest = await call(daemon, "GET", f"/api/v1/bans?limit=2&after={first['next']}")
    assert rest == {"bans": newest[2:], "count": 3}
    for query in ("limit=0", "limit=1001", "limit=x"):
        status, _, problem = await call(daemon, "GET", f"/api/v1/bans?{query}")
        assert (status, problem["code"]) == (400, "invalid_message")
